"""Every handler inside a reproduction of AWS Lambda's execution environment (see `sandbox`).

Read-only filesystem but /tmp, no /dev/shm, HOME unset, 2 CPUs, `__main__` not ours:
batches and units large enough that the parse workers start. Each handler must do
there what it does on a laptop (the archive equals one clean compact), write nothing
outside /tmp, and a rerun must read and write nothing (0 source GET, 0 PUT).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from archiver.aws.handlers import sqs_handler
from archiver.engine.parsing import POOL_MIN_OBJECTS
from archiver.errors import WorkerStartError
from archiver.local.synth import CorpusSummary, write_corpus
from tests.functional.aws.archive import assert_same_archive, download_tree, s3_client
from tests.functional.aws.batches import batch, failed_ids
from tests.functional.aws.conftest import DEST_PREFIX, SOURCE_PREFIX, START, Deployed
from tests.functional.aws.lambda_context import LambdaContext
from tests.functional.aws.sandbox import LAMBDA_CPUS, run_handler
from tests.functional.aws.test_activity_handler import NOW, TOKEN, Deployment, ids
from tests.functional.faults import FaultProxy, Request
from tests.functional.sources.fake_workato import FakeWorkato, make_events, running_fake
from tests.unit.aws.events import load_event

pytestmark = pytest.mark.slow  # each runs several handler processes over a corpus of 1,000+ objects

BATCH = 1000
DAYS = 2


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CorpusSummary]:
    """Over 1,000 objects in two days: every day unit holds well over POOL_MIN_OBJECTS."""
    root = tmp_path_factory.mktemp("lambda-corpus")
    summary = write_corpus(root, jobs=800, seed=8, start=START, days=DAYS)
    assert summary.objects > BATCH and summary.objects // DAYS > POOL_MIN_OBJECTS
    return root, summary


class Requests:
    """The S3 requests a sandboxed invocation makes, seen by a pass-through proxy."""

    def __init__(self, source_bucket: str) -> None:
        self.source_bucket = source_bucket
        self.seen: list[Request] = []

    def record(self, request: Request) -> str:
        self.seen.append(request)
        return "pass"

    @property
    def source_gets(self) -> int:
        source = f"/{self.source_bucket}/"
        return sum(1 for request in self.seen if request.is_object_read and request.path.startswith(source))

    @property
    def puts(self) -> int:
        """Writes to a bucket (PUT, or POST under a bucket: a POST to / is another service's API call)."""
        return sum(1 for r in self.seen if r.method in ("PUT", "POST") and r.path.strip("/"))


@contextmanager
def counted(deployed: Deployed) -> Iterator[tuple[Requests, dict[str, str]]]:
    """An environment whose S3 requests go through a counting proxy, and the count."""
    requests = Requests(deployed.source_bucket)
    with FaultProxy(deployed.endpoint, rate=0.0, rule=requests.record) as proxy:
        yield requests, {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint}


def archive_of(deployed: Deployed, folder: Path) -> Path:
    return download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, folder)


def test_sqs_handler_archives_a_batch_of_1000_notifications(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN one SQS batch of 1,000 notifications (S3, SNS and EventBridge shapes in turn)
    event = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys[:BATCH]))
    # WHEN sqs_handler gets it inside Lambda's environment
    run = run_handler("sqs_handler", event)
    # THEN no message failed, the parse workers did the parsing, and nothing was written outside /tmp
    assert failed_ids(run.answer) == set()
    assert run.workers_started == LAMBDA_CPUS
    # AND with the rest of the objects (the proxy counting their reads), the archive is one clean compact's
    rest = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys[BATCH:]))
    with counted(deployed) as (first_requests, environ):
        assert failed_ids(run_handler("sqs_handler", rest, environ).answer) == set()
    assert first_requests.source_gets > 0 and first_requests.puts > 0
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)
    # AND SQS delivering the batch again reads no object and writes nothing
    with counted(deployed) as (requests, environ):
        again = run_handler("sqs_handler", event, environ)
    assert failed_ids(again.answer) == set()
    assert (requests.source_gets, requests.puts) == (0, 0)


def test_task_handler_plans_compacts_every_unit_and_verifies(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN the Step Functions backfill's task events (tests/events/sfn_*.json), over every day
    plan_event = {**load_event("sfn_plan.json"), "since": None}
    # WHEN the plan task runs, then the compact task of every unit it wrote, then verify
    planned = run_handler("task_handler", plan_event).answer
    client: Any = s3_client(deployed.endpoint)
    manifest = client.get_object(Bucket=planned["manifest"]["bucket"], Key=planned["manifest"]["key"])
    units = [json.loads(line)["unit"] for line in manifest["Body"].read().decode().splitlines()]
    runs = [run_handler("task_handler", {**load_event("sfn_compact.json"), "unit": unit}) for unit in units]
    verified = run_handler("task_handler", load_event("sfn_verify.json")).answer
    # THEN every unit archived cleanly, the large ones with the parse workers, and verify passed
    summaries = [run.answer for run in runs]
    assert all(summary["objects_failed"] == 0 and summary["failures"] == [] for summary in summaries)
    assert sum(summary["objects_listed"] for summary in summaries) == len(deployed.keys)
    large = [run for run, unit in zip(runs, units, strict=True) if unit.startswith("day=")]
    assert len(large) == DAYS and all(run.workers_started == LAMBDA_CPUS for run in large)
    assert (
        verified["ok"] is True and verified["objects_checked"] == len(deployed.keys) - deployed.corpus.skipped
    )
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)
    # AND compacting every unit again reads no source object and writes nothing
    with counted(deployed) as (requests, environ):
        again = [run_handler("task_handler", {"action": "compact", "unit": unit}, environ) for unit in units]
    assert all(summary.answer["objects_archived"] == 0 for summary in again)
    assert (requests.source_gets, requests.puts) == (0, 0)


def test_schedule_handler_compacts_and_verifies(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN the nightly scheduled event, 16 days after the corpus starts
    event = load_event("eventbridge_scheduled.json")
    event["time"] = f"{(START + dt.timedelta(days=16)).isoformat()}T03:00:00Z"
    # WHEN schedule_handler runs inside Lambda's environment
    run = run_handler("schedule_handler", event)
    result = run.answer
    # THEN it compacted everything with the parse workers and verified the final days
    assert result["complete"] is True and result["compact"]["objects_failed"] == 0
    assert result["verify"]["ok"] is True and result["verify"]["objects_checked"] > 0
    assert run.workers_started == LAMBDA_CPUS
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)
    # AND the next night, with nothing new, reads no source object and writes nothing
    with counted(deployed) as (requests, environ):
        again = run_handler("schedule_handler", event, environ).answer
    assert again["complete"] is True and again["compact"]["objects_archived"] == 0
    assert (requests.source_gets, requests.puts) == (0, 0)


def test_the_workers_never_import_the_callers_main_again(deployed: Deployed) -> None:
    # GIVEN a process whose __main__ raises if imported again (Lambda's is its runtime), on an
    # ordinary machine, so that nothing but the way workers start can fail
    event = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys[:BATCH]))
    environ = {**os.environ, "ARCHIVER_PARSE_WORKERS": str(LAMBDA_CPUS)}
    # WHEN sqs_handler parses a batch of 1,000 notifications in worker processes
    run = run_handler("sqs_handler", event, environ, sandboxed=False)
    # THEN the workers started without it, and every message is archived
    assert failed_ids(run.answer) == set()
    assert run.workers_started == LAMBDA_CPUS


def test_workers_that_cannot_start_fail_the_invocation_in_one_line(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an interpreter that cannot start the parse workers (sys.executable is not Python)
    monkeypatch.setattr(sys, "executable", shutil.which("false"))
    monkeypatch.setenv("ARCHIVER_PARSE_WORKERS", str(LAMBDA_CPUS))
    event = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys[:BATCH]))
    # WHEN sqs_handler gets a batch whose units need the workers
    with pytest.raises(WorkerStartError) as raised:
        sqs_handler(event, LambdaContext())
    # THEN the invocation fails with one line naming the cause and the way out, not a failure per message
    message = str(raised.value)
    assert "\n" not in message and "could not start 2 parse workers" in message
    assert "before it was ready" in message and "ARCHIVER_PARSE_WORKERS=1" in message


@pytest.fixture
def activity_api(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Deployment, list[Any]]]:
    """The fake activity API holding a year of events, the token in Secrets Manager, an empty archive."""
    recent = make_events(500, start=NOW - dt.timedelta(days=3), span=dt.timedelta(days=3))
    old = make_events(12, start=NOW - dt.timedelta(days=364), span=dt.timedelta(days=3), first_id=90_000)
    with running_fake(FakeWorkato(token=TOKEN, events=recent + old)) as fake:
        yield Deployment(aws_env, fake, monkeypatch), recent + old


def test_activity_handler_pulls_the_api(activity_api: tuple[Deployment, list[Any]], tmp_path: Path) -> None:
    deployment, events = activity_api
    # GIVEN the scheduled event, the token in Secrets Manager and a year of events behind the API
    event = load_event("scheduler_activity.json")
    # WHEN activity_handler runs inside Lambda's environment
    first = run_handler("activity_handler", event).answer
    # THEN every event is in the activity table once, and nothing was written outside /tmp
    assert first["complete"] is True and first["events_new"] == len(events)
    assert sorted(row["event_id"] for row in deployment.rows(tmp_path)) == ids(events)
    # AND the next invocation re-reads only the overlap and writes nothing
    requests = Requests(deployment.bucket)
    with FaultProxy(deployment.endpoint, rate=0.0, rule=requests.record) as proxy:
        again = run_handler("activity_handler", event, {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint})
    assert again.answer["complete"] is True and again.answer["events_new"] == 0
    assert requests.puts == 0
