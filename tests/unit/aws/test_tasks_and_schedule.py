"""Step Functions task inputs and the nightly schedule's windows (pure parts)."""

from __future__ import annotations

import datetime as dt

import pytest

from archiver.aws.schedule import scheduled_time, verify_window
from archiver.aws.tasks import TaskRequest, parse_task
from archiver.errors import ConfigError
from tests.unit.aws.events import load_event


def test_the_sample_task_inputs_parse() -> None:
    assert parse_task(load_event("sfn_plan.json")) == TaskRequest("plan", since=dt.date(2024, 8, 30))
    assert parse_task(load_event("sfn_compact.json")) == TaskRequest("compact", unit="day=2024-09-01")
    assert parse_task(load_event("sfn_verify.json")) == TaskRequest("verify")
    assert parse_task({"action": "compact", "unit": "loose=undated"}).unit == "loose=undated"
    assert parse_task({"action": "compact", "unit": "day=2024-08-20.3.1"}).unit == "day=2024-08-20.3.1"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "unknown action None"),
        ({"action": "delete"}, "unknown action 'delete'"),
        ({"action": "plan", "shard": "1/2"}, "unknown field"),
        ({"action": "compact"}, "`unit` must be"),
        ({"action": "compact", "unit": "day=yesterday"}, "not a unit"),
        ({"action": "compact", "unit": "day=2024-09-01", "since": "2024-09-01"}, "unknown field"),
        ({"action": "verify", "since": "01/09/2024"}, "not a date"),
        ({"action": "verify", "until": 20240901}, "YYYY-MM-DD string or null"),
    ],
)
def test_bad_task_inputs_are_config_errors(event: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_task(event)


def test_the_scheduled_time_comes_from_the_event() -> None:
    fallback = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    moment = scheduled_time(load_event("eventbridge_scheduled.json"), fallback)
    assert moment == dt.datetime(2024, 9, 20, 3, 0, tzinfo=dt.UTC)
    assert scheduled_time({}, fallback) == fallback
    assert scheduled_time({"time": "soon"}, fallback) == fallback


def test_verify_covers_the_days_past_the_retry_window() -> None:
    now = dt.datetime(2024, 9, 20, 3, 0, tzinfo=dt.UTC)
    assert verify_window(now, 14, 3) == (dt.date(2024, 9, 4), dt.date(2024, 9, 6))
    assert verify_window(now, 0, 1) == (dt.date(2024, 9, 20), dt.date(2024, 9, 20))
