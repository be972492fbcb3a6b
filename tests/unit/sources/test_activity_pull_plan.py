"""The puller's pure parts: which window to pull, its chunks, records to rows, checkpoints, the report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from archiver.config import settings_from_env
from archiver.errors import ConfigError, StorageError
from archiver.sources.activity_checkpoint import Checkpoint, checkpoint_key
from archiver.sources.activity_pull import (
    BACKFILL,
    BOUNDARY_OVERLAP,
    PullReport,
    Window,
    api_events,
    parse_managed_users,
    plan_window,
    split_window,
)

NOW = dt.datetime(2025, 6, 10, 12, 30, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
CASES = Path(__file__).parents[2] / "cases"


def at(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2025, 6, day, hour, tzinfo=dt.UTC)


def checkpoint(through: dt.datetime) -> Checkpoint:
    return Checkpoint(covered_from=at(1), through=through)


@pytest.mark.parametrize(
    ("stored", "since", "until", "expected"),
    [
        (None, None, None, Window(NOW - BACKFILL, NOW)),
        (checkpoint(at(9, 6)), None, None, Window(at(9, 5), NOW)),
        (checkpoint(at(9, 6)), dt.date(2025, 6, 1), None, Window(at(1), NOW)),
        (None, dt.date(2025, 6, 1), dt.date(2025, 6, 2), Window(at(1), at(3))),
        (None, dt.date(2025, 6, 9), dt.date(2025, 6, 30), Window(at(9), NOW)),
        (checkpoint(at(9, 6)), None, dt.date(2025, 6, 1), None),
        (checkpoint(NOW + HOUR * 2), None, None, None),
    ],
    ids=[
        "first-run",
        "checkpoint-less-overlap",
        "since-wins",
        "since-until",
        "until-clamped",
        "empty",
        "future",
    ],
)
def test_the_window_comes_from_the_checkpoint_or_the_days_asked(
    stored: Checkpoint | None, since: dt.date | None, until: dt.date | None, expected: Window | None
) -> None:
    # GIVEN a checkpoint (or none) and --since/--until (or none)
    # WHEN the window is planned with an hour of overlap
    # THEN it is the expected span of event time
    assert plan_window(stored, now=NOW, overlap=HOUR, since=since, until=until) == expected


def test_chunks_cover_the_window_and_share_a_second_at_each_boundary() -> None:
    # GIVEN two and a half days
    window = Window(at(1), at(3, 12))
    # WHEN it is split into days
    chunks = split_window(window, dt.timedelta(days=1))
    # THEN the chunks cover it, each starting a second before the last one ended
    assert chunks == [
        Window(at(1), at(2)),
        Window(at(2) - BOUNDARY_OVERLAP, at(3)),
        Window(at(3) - BOUNDARY_OVERLAP, at(3, 12)),
    ]
    assert split_window(Window(at(1), at(1, 5)), dt.timedelta(days=1)) == [Window(at(1), at(1, 5))]


def test_api_records_become_activity_rows_through_the_formats_core() -> None:
    # GIVEN the documented sample record, one without a workspace and one without a timestamp
    sample = json.loads((CASES / "activity_api_record.json").read_text())
    bare = {key: value for key, value in sample.items() if key != "workspace"} | {"id": 2}
    broken = {key: value for key, value in sample.items() if key != "timestamp"}
    # WHEN they are read for managed user 777
    events, dropped = api_events([sample, bare, broken], managed_user_id="777")
    # THEN the first two become rows keyed by Workato's id, the last is dropped
    assert dropped == 1
    assert [event.row["event_id"] for event in events] == ["656541", "2"]
    assert events[0].day == dt.date(2025, 12, 18)
    assert events[0].row["team_id"] == "2100003309"  # the record's own workspace
    assert events[1].row["team_id"] == "777"  # else the managed user pulled
    assert events[0].row["source_key"] == "api:/api/managed_users/777/activity_logs"
    assert events[0].row["source_etag"] is None
    assert events[0].row["category"] == "connector_sdk"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, (False, [])),
        (["all"], (True, [])),
        (["12", "ALL", "12", "x_9-a"], (True, ["12", "x_9-a"])),
    ],
)
def test_managed_users_are_ids_or_all(values: list[str] | None, expected: tuple[bool, list[str]]) -> None:
    assert parse_managed_users(values) == expected


@pytest.mark.parametrize("value", ["../x", "a/b", "", "1 2"])
def test_a_managed_user_that_is_not_an_id_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="--managed-user"):
        parse_managed_users([value])


def test_checkpoints_are_per_workspace_and_read_back_what_they_wrote() -> None:
    # GIVEN a checkpoint
    stored = Checkpoint(
        at(1), at(9, 6), managed_user_id="42", base_url="https://app.eu.workato.com", updated_at=NOW
    )
    # WHEN it is written and read THEN it is the same, under its workspace's key
    assert Checkpoint.from_json(stored.to_json(), key="k") == stored
    assert checkpoint_key(None) == "_archiver/activity-api/checkpoint.json"
    assert checkpoint_key("42") == "_archiver/activity-api/checkpoint-42.json"
    assert json.loads(stored.to_json())["through"] == "2025-06-09T06:00:00Z"


def test_a_damaged_checkpoint_says_how_to_recover() -> None:
    with pytest.raises(StorageError, match="delete it"):
        Checkpoint.from_json(b"{not json", key="_archiver/activity-api/checkpoint.json")


@pytest.mark.parametrize(
    ("start", "end", "through"),
    [
        (at(9, 5), at(10), at(10)),  # overlaps: moves forward
        (at(9, 6), at(10), at(10)),  # touches: moves forward
        (at(9, 7), at(10), None),  # leaves a gap: does not move
        (at(2), at(9), None),  # adds nothing
    ],
)
def test_a_checkpoint_only_moves_forward_over_time_that_joins_it(
    start: dt.datetime, end: dt.datetime, through: dt.datetime | None
) -> None:
    extended = checkpoint(at(9, 6)).extended(start, end)
    assert (None if extended is None else extended.through) == through


def test_the_report_has_the_promised_keys() -> None:
    report = PullReport(events_pulled=3, events_new=2, pages=1, requests={"200": 1})
    report.unknown_event_types["brand_new"] += 1
    data = report.as_dict()
    assert data["rows"] == {"activity": 2}
    assert data["unknown_event_types"] == {"brand_new": 1}
    assert {"events_pulled", "events_new", "pages", "requests", "retries", "seconds", "window"} <= set(data)


def test_api_settings_come_from_the_environment() -> None:
    # GIVEN the API variables
    settings = settings_from_env(
        {
            "ARCHIVER_API_REQUESTS_PER_MINUTE": "30",
            "ARCHIVER_API_OVERLAP_MINUTES": "0",
            "ARCHIVER_API_MAX_ATTEMPTS": "3",
        }
    )
    # THEN they are read, and the defaults are Workato's limit and an hour of overlap
    assert (settings.api_requests_per_minute, settings.api_overlap_minutes, settings.api_max_attempts) == (
        30,
        0,
        3,
    )
    defaults = settings_from_env({})
    assert (defaults.api_requests_per_minute, defaults.api_overlap_minutes) == (60, 60)
    with pytest.raises(ConfigError, match="ARCHIVER_API_REQUESTS_PER_MINUTE"):
        settings_from_env({"ARCHIVER_API_REQUESTS_PER_MINUTE": "0"})
