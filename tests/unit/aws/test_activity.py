"""The activity puller's Lambda settings, token handling, time box and summary (pure parts)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from archiver.aws.activity import (
    ActivityConfig,
    TimeBox,
    TokenSource,
    activity_config_from_env,
    auth_message,
    check_base_url,
    managed_users_from,
    summarise,
    token_from,
)
from archiver.aws.deployment import Location
from archiver.aws.schedule import scheduled_time
from archiver.config import Settings
from archiver.errors import ConfigError
from archiver.sources.activity_pull import PullReport
from archiver.sources.workato.client import AUTH_HINT
from tests.unit.aws.events import load_event

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:archiver/workato-AbCdEf"
BASE = {
    "ARCHIVER_DEST": "s3://archive/parquet/",
    "WORKATO_BASE_URL": "https://app.eu.workato.com/",
    "WORKATO_API_TOKEN_SECRET": SECRET_ARN,
}
TOKEN = "wrk-unit-S3CRET-0123456789"


def test_a_complete_environment() -> None:
    config = activity_config_from_env(
        {**BASE, "WORKATO_MANAGED_USERS": " 101, 202 ,", "ARCHIVER_API_REQUESTS_PER_MINUTE": "30"}
    )
    assert config.dest == Location("archive", "parquet/")
    assert config.base_url == "https://app.eu.workato.com"
    assert config.managed_users == ("101", "202")
    assert config.token_source == TokenSource("secret", SECRET_ARN)
    assert config.settings.api_requests_per_minute == 30


def test_the_source_is_not_needed_but_must_not_overlap_the_archive() -> None:
    assert activity_config_from_env(BASE).dest.bucket == "archive"
    assert (
        activity_config_from_env({**BASE, "ARCHIVER_SOURCE": "s3://logs/workato/"}).dest.bucket == "archive"
    )
    with pytest.raises(ConfigError, match="never be written under the watched prefix"):
        activity_config_from_env({**BASE, "ARCHIVER_SOURCE": "s3://archive/"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARCHIVER_DEST": ""}, "ARCHIVER_DEST is not set"),
        ({"WORKATO_BASE_URL": ""}, "WORKATO_BASE_URL is not set"),
        ({"WORKATO_API_TOKEN_SECRET": ""}, "set WORKATO_API_TOKEN_SECRET .* or WORKATO_API_TOKEN_PARAMETER"),
        ({"WORKATO_API_TOKEN_PARAMETER": "/archiver/token"}, "only one of"),
        ({"WORKATO_MANAGED_USERS": "101;202"}, "WORKATO_MANAGED_USERS must be comma-separated"),
        ({"ARCHIVER_API_REQUESTS_PER_MINUTE": "0"}, "ARCHIVER_API_REQUESTS_PER_MINUTE must be positive"),
    ],
)
def test_missing_or_invalid_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        activity_config_from_env({**BASE, **environ})


def test_the_token_may_live_in_ssm_instead() -> None:
    environ = {**BASE, "WORKATO_API_TOKEN_SECRET": " ", "WORKATO_API_TOKEN_PARAMETER": "/archiver/token"}
    source = activity_config_from_env(environ).token_source
    assert source == TokenSource("parameter", "/archiver/token")
    assert str(source) == "SSM parameter /archiver/token (WORKATO_API_TOKEN_PARAMETER)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.workato.com", "https://www.workato.com"),
        (" https://app.jp.workato.com/ ", "https://app.jp.workato.com"),
        ("https://proxy.example.com:8443/workato", "https://proxy.example.com:8443/workato"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),  # loopback: local tests
        ("http://localhost:8080/", "http://localhost:8080"),
    ],
)
def test_good_base_urls(raw: str, expected: str) -> None:
    assert check_base_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("http://www.workato.com", "must be https"),
        ("www.workato.com", "must look like https://"),
        ("ftp://www.workato.com", "must look like https://"),
        ("https://", "must look like https://"),
        ("https://user:pw@www.workato.com", "must not carry a user name or password"),
        ("https://www.workato.com/?a=1", "without query or fragment"),
        ("https://www.workato.com:port", "not a URL"),
    ],
)
def test_bad_base_urls_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_base_url(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ()),
        (" ", ()),
        ("all", ("all",)),
        ("ALL", ("ALL",)),
        ("1,2,2", ("1", "2", "2")),
        ("a-1", ("a-1",)),
    ],
)
def test_managed_users(raw: str, expected: tuple[str, ...]) -> None:
    assert managed_users_from(raw) == expected


SOURCE = TokenSource("secret", SECRET_ARN)


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,
        f"  {TOKEN}\n",
        TOKEN.encode(),
        f'{{"token": "{TOKEN}"}}',
        f'{{"token": " {TOKEN} ", "note": "x"}}',
    ],
)
def test_the_token_is_the_secret_string_or_its_json_token_key(value: str | bytes) -> None:
    assert token_from(value, SOURCE) == TOKEN


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        (f'{{"api_key": "{TOKEN}"}}', "JSON without a string 'token' key"),
        (f'{{"token": "{TOKEN}"', "JSON without a string 'token' key"),
        (f"{TOKEN} {TOKEN}", "whitespace or control characters"),
        (b"\xff\xfe" + TOKEN.encode(), "binary"),
        (None, "is empty"),
    ],
)
def test_a_secret_that_is_not_one_token_is_refused_without_echoing_it(
    value: str | bytes | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        token_from(value, SOURCE)
    assert TOKEN not in str(raised.value)
    assert SECRET_ARN in str(raised.value)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_time_box_keeps_the_reserve_plus_the_longest_chunk_seen() -> None:
    # GIVEN 300 s left, a 90 s reserve, and a clock the test moves
    clock, left = Clock(), [300.0]
    box = TimeBox(lambda: left[0], 90, clock=clock)
    # WHEN nothing has been pulled yet: the reserve alone decides
    assert box() is True
    # WHEN a chunk took 100 s (and the time left fell with it)
    clock.now, left[0] = 100.0, 200.0
    # THEN another still fits (200 >= 90 + 100)
    assert box() is True and box.longest_chunk_s == 100.0
    # WHEN the next took 20 s: the longest is still 100, and 180 < 190
    clock.now, left[0] = 120.0, 180.0
    assert box() is False


def test_the_time_box_with_too_little_time_at_the_start_says_no_at_once() -> None:
    assert TimeBox(lambda: 60.0, 90, clock=Clock())() is False
    assert TimeBox(lambda: 90.0, 90, clock=Clock())() is True


def test_the_summary_drops_what_grows_and_says_whether_it_finished() -> None:
    # GIVEN the report of a pull of 300 customer workspaces with 30 unknown event names
    report = PullReport(events_pulled=7, events_new=5, pages=3, requests={"200": 3}, stopped_early=True)
    report.unknown_event_types = Counter({f"new_event_{n:02d}": n + 1 for n in range(30)})
    report.managed_users = [str(n) for n in range(300)]
    report.workspaces = [
        {"managed_user_id": str(n), "window": None, "checkpoint": f"2025-06-{10 + n % 3:02d}T00:00:00Z"}
        for n in range(300)
    ]
    report.workspaces.append({"managed_user_id": "new", "window": None, "checkpoint": None})
    report.window = {"from": "2025-06-09T23:00:00Z", "to": "2025-06-10T12:00:00Z"}
    # WHEN it is summarised
    summary = summarise(report)
    # THEN counts stay, lists become counts, the most frequent unknown names are kept
    assert summary["events_new"] == 5 and summary["requests"] == {"200": 3}
    assert summary["complete"] is False
    assert summary["workspaces"] == 301 and "managed_users" not in summary
    assert summary["oldest_checkpoint"] == "2025-06-10T00:00:00Z"
    assert len(summary["unknown_event_types"]) == 20 and summary["unknown_event_types_omitted"] == 10
    assert next(iter(summary["unknown_event_types"])) == "new_event_29"
    assert summary["unknown_events"] == sum(range(1, 31))
    assert len(repr(summary)) < 2000


def test_a_refused_token_says_what_to_check_in_lambda_terms() -> None:
    config = ActivityConfig(Location("archive", ""), "https://www.workato.com", (), SOURCE, Settings())
    original = f"https://www.workato.com/api/activity_logs answered HTTP 403: {AUTH_HINT}"
    message = auth_message(original, config)
    assert message.startswith("https://www.workato.com/api/activity_logs answered HTTP 403: check the token")
    assert SECRET_ARN in message and "privilege" in message
    assert "WORKATO_BASE_URL (https://www.workato.com)" in message
    assert "--base-url" not in message and "WORKATO_API_TOKEN " not in message and "\n" not in message


def test_the_scheduler_event_carries_the_time_the_pull_runs_up_to() -> None:
    fallback = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert scheduled_time(load_event("scheduler_activity.json"), fallback) == dt.datetime(
        2025, 6, 10, 12, 0, tzinfo=dt.UTC
    )
