"""`activity_handler`: the scheduled activity-API pull, in-process, against moto over HTTP and the fake API.

The archive bucket and the token's secret live on the moto server (S3 and Secrets
Manager, reached through AWS_ENDPOINT_URL: Powertools' Parameters client honours it);
Workato's API is the loopback fake. The invocation event is the one EventBridge
Scheduler sends with the template's Input (tests/events/scheduler_activity.json).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3.session
import botocore.client
import pytest
from aws_lambda_powertools.utilities import parameters

from archiver.aws import activity
from archiver.aws.handlers import activity_handler
from archiver.errors import ApiAuthError
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket
from tests.functional.aws.archive import download_tree
from tests.functional.aws.lambda_context import LambdaContext
from tests.functional.readback import read_rows
from tests.functional.sources.fake_workato import FakeWorkato, make_events, running_fake
from tests.unit.aws.events import load_event

TOKEN = "wrk-LAMBDA-S3CRET-7f3a9c2e4b1d8a6f"
NOW = dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.UTC)  # the event's time
DEST_PREFIX = "archive/"


class Deployment:
    """An archive bucket, the token in Secrets Manager, the fake API, and the environment pointing at them."""

    def __init__(self, endpoint: str, fake: FakeWorkato, monkeypatch: pytest.MonkeyPatch) -> None:
        self.endpoint = endpoint
        self.fake = fake
        self.bucket = f"act-{uuid.uuid4().hex[:12]}"
        create_bucket(endpoint, self.bucket)
        session = boto3.session.Session(**MOTO_CREDENTIALS)
        self.secrets: Any = session.client("secretsmanager", endpoint_url=endpoint)
        self.secret_arn = self.secrets.create_secret(
            Name=f"archiver/workato-token-{uuid.uuid4().hex[:8]}", SecretString=TOKEN
        )["ARN"]
        monkeypatch.delenv("ARCHIVER_SOURCE", raising=False)
        monkeypatch.delenv(activity.PARAMETER_VARIABLE, raising=False)
        monkeypatch.setenv("ARCHIVER_DEST", f"s3://{self.bucket}/{DEST_PREFIX}")
        monkeypatch.setenv("WORKATO_BASE_URL", fake.url)
        monkeypatch.setenv("WORKATO_API_TOKEN_SECRET", self.secret_arn)
        monkeypatch.setenv("ARCHIVER_API_REQUESTS_PER_MINUTE", "60000")
        monkeypatch.setenv("ARCHIVER_API_MAX_ATTEMPTS", "2")
        monkeypatch.setenv("ARCHIVER_RETIRE_GRACE_SECONDS", "0")
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    def rows(self, tmp_path: Path) -> list[dict[str, Any]]:
        root = download_tree(self.endpoint, self.bucket, DEST_PREFIX, tmp_path / uuid.uuid4().hex[:8])
        return read_rows(root, "activity")


@pytest.fixture(autouse=True)
def fresh_token_cache() -> Iterator[None]:
    """Every test is a cold start: no cached token, no pending re-read."""
    parameters.clear_caches()
    activity._refresh_token = False
    yield
    parameters.clear_caches()
    activity._refresh_token = False


@pytest.fixture
def events() -> list[dict[str, Any]]:
    # 500 events over the three days before the event's time (several pages a day), and a few
    # near the start of the year the first run reaches back
    recent = make_events(500, start=NOW - dt.timedelta(days=3), span=dt.timedelta(days=3))
    old = make_events(
        12, start=NOW - dt.timedelta(days=364), span=dt.timedelta(days=3), first_id=90_000, seed=3
    )
    return recent + old


@pytest.fixture
def deployment(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]]
) -> Iterator[Deployment]:
    with running_fake(FakeWorkato(token=TOKEN, events=events)) as fake:
        yield Deployment(aws_env, fake, monkeypatch)


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SecretId of every GetSecretValue call any boto3 client makes."""
    calls: list[str] = []
    original: Callable[..., Any] = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "GetSecretValue":
            calls.append(api_params["SecretId"])
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


class Logs:
    """What was logged at DEBUG and up since `clear()`: records (extras included), Powertools' JSON."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
        self.caplog, self.capsys = caplog, capsys
        self.buffer = io.StringIO()

    def clear(self) -> None:
        """Forget what the test itself logged (botocore logs the requests that store a secret)."""
        self.caplog.clear()
        self.buffer.seek(0)
        self.buffer.truncate()
        self.capsys.readouterr()

    def text(self) -> str:
        records = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in self.caplog.records)
        captured = self.capsys.readouterr()
        self.buffer.write(captured.out + captured.err)
        return records + "\n" + self.buffer.getvalue()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    caplog.set_level(logging.DEBUG)
    captured = Logs(caplog, capsys)
    swapped = [
        (handler, handler.setStream(captured.buffer))
        for handler in logging.getLogger("archiver").handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    captured.clear()
    yield captured
    for handler, stream in swapped:
        handler.setStream(stream)


def scheduled_event() -> dict[str, Any]:
    return load_event("scheduler_activity.json")


def ids(events: list[dict[str, Any]]) -> list[str]:
    return sorted(str(event["id"]) for event in events)


def test_a_pull_lands_every_event_once_and_a_second_adds_nothing(
    deployment: Deployment,
    events: list[dict[str, Any]],
    secret_reads: list[str],
    logs: Logs,
    tmp_path: Path,
) -> None:
    # GIVEN an empty archive, the token in Secrets Manager and a year of events behind the API
    # WHEN the scheduled event invokes the handler (a first run: it reaches back a year)
    first = activity_handler(scheduled_event(), LambdaContext(remaining_s=900))
    # THEN every event is in the activity table once, under Workato's id
    rows = deployment.rows(tmp_path)
    assert sorted(row["event_id"] for row in rows) == ids(events)
    assert {row["stream_type"] for row in rows} == {"activity_api"}
    assert first["complete"] is True
    assert first["events_new"] == first["events_pulled"] == len(events)
    assert first["window"] == {"from": "2024-06-10T12:00:00Z", "to": "2025-06-10T12:00:00Z"}
    assert first["oldest_checkpoint"] == "2025-06-10T12:00:00Z" and first["workspaces"] == 1
    # WHEN it is invoked again in the same execution environment
    second = activity_handler(scheduled_event(), LambdaContext(remaining_s=900))
    # THEN it re-read only the overlap and added nothing
    assert second["complete"] is True and second["events_new"] == 0
    assert second["window"] == {"from": "2025-06-10T11:00:00Z", "to": "2025-06-10T12:00:00Z"}
    assert sorted(row["event_id"] for row in deployment.rows(tmp_path)) == ids(events)
    # AND the secret was read once for both invocations, from the ARN the environment names
    assert secret_reads == [deployment.secret_arn]
    # AND every request carried the token, which appears in no log line, output or summary
    assert all(seen.authorised for seen in deployment.fake.requests)
    text = logs.text()
    assert "activity pulled" in text and "GetSecretValue" in text  # DEBUG lines were captured
    for where in (text, repr(first), repr(second)):
        assert TOKEN not in where
    # AND the summary is small: no per-workspace list, nothing that grows with the archive
    assert len(repr(first)) < 2000 and "workspaces" in first and isinstance(first["workspaces"], int)


def test_a_refused_token_raises_one_line_naming_what_to_check_and_is_read_again_next_time(
    deployment: Deployment,
    secret_reads: list[str],
    logs: Logs,
    tmp_path: Path,
) -> None:
    # GIVEN a secret holding a token the API refuses
    wrong = "wrk-EXPIRED-0000-token-9e8d7c"
    deployment.secrets.put_secret_value(SecretId=deployment.secret_arn, SecretString=wrong)
    logs.clear()
    # WHEN the handler runs
    with pytest.raises(ApiAuthError) as raised:
        activity_handler(scheduled_event(), LambdaContext(remaining_s=900))
    # THEN it fails with one line naming the status, the secret, the privilege and the base URL
    message = str(raised.value)
    assert "\n" not in message and "HTTP 401" in message
    assert deployment.secret_arn in message and "activity audit log privilege" in message
    assert f"WORKATO_BASE_URL ({deployment.fake.url})" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    # AND the token is nowhere: not in the error, the logs or the output
    text = logs.text()
    assert wrong not in message and wrong not in text
    assert "activity pull failed" in text
    assert deployment.rows(tmp_path) == []
    # WHEN the secret is fixed (a rotation) and the next invocation runs in the same environment
    deployment.secrets.put_secret_value(SecretId=deployment.secret_arn, SecretString=TOKEN)
    after = activity_handler(scheduled_event(), LambdaContext(remaining_s=900))
    # THEN it read the secret again (the refused one was not kept) and pulled everything
    assert len(secret_reads) == 2
    assert after["complete"] is True and after["events_new"] == after["events_pulled"] > 0


class RunningOutContext(LambdaContext):
    """A Lambda with plenty of time for the first `asks` questions, then 10 s: the clock ran out."""

    def __init__(self, asks: int) -> None:
        super().__init__(remaining_s=900)
        self.asks = asks
        self.asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return 900_000 if self.asked <= self.asks else 10_000


def test_little_time_left_stops_between_day_chunks_and_the_next_invocation_finishes(
    deployment: Deployment, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    # GIVEN an invocation whose time runs out after five day-chunks of the year it must pull
    # WHEN it runs
    partial = activity_handler(scheduled_event(), RunningOutContext(asks=5))
    # THEN it stopped early, saying so, with the checkpoint five days into the year
    assert partial["complete"] is False
    assert partial["oldest_checkpoint"] == "2024-06-15T12:00:00Z"
    landed = [row["event_id"] for row in deployment.rows(tmp_path)]
    assert 0 < len(landed) < len(events) and len(landed) == len(set(landed)) == partial["events_new"]
    # AND the next invocation, with time, continues from there and finishes: every event once
    rest = activity_handler(scheduled_event(), LambdaContext(remaining_s=900))
    assert rest["complete"] is True
    assert rest["window"]["from"] == "2024-06-15T11:00:00Z"  # the checkpoint less the overlap
    assert sorted(row["event_id"] for row in deployment.rows(tmp_path)) == ids(events)


def test_an_invocation_that_starts_with_too_little_time_pulls_nothing(
    deployment: Deployment, tmp_path: Path
) -> None:
    result = activity_handler(scheduled_event(), LambdaContext(remaining_s=30))
    assert result["complete"] is False and result["pages"] == 0
    assert deployment.fake.requests == [] and deployment.rows(tmp_path) == []


def test_the_token_can_come_from_an_ssm_securestring(
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    events: list[dict[str, Any]],
    logs: Logs,
    tmp_path: Path,
) -> None:
    # GIVEN the token in SSM Parameter Store instead of Secrets Manager
    ssm: Any = boto3.session.Session(**MOTO_CREDENTIALS).client("ssm", endpoint_url=deployment.endpoint)
    name = f"/archiver/workato-token-{uuid.uuid4().hex[:8]}"
    ssm.put_parameter(Name=name, Value=TOKEN, Type="SecureString")
    monkeypatch.delenv("WORKATO_API_TOKEN_SECRET")
    monkeypatch.setenv("WORKATO_API_TOKEN_PARAMETER", name)
    logs.clear()
    # WHEN the handler runs
    result = activity_handler(scheduled_event(), LambdaContext(remaining_s=900))
    # THEN it pulled everything with it, and logged it nowhere
    assert result["complete"] is True and result["events_new"] == len(events)
    assert all(seen.authorised for seen in deployment.fake.requests)
    text = logs.text()
    assert "GetParameter" in text and TOKEN not in text
