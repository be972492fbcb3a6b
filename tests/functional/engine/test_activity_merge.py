"""One `activity` row per event, whichever way it came: the S3 stream, the activity API, or both.

The stream's copy of an event carries no Workato id; the API's does. Both copies of
one event agree on the event name, the second, the user id and the resource type
and id. Whatever order the copies arrive in (stream first, API first, the stream
copy days late, the stream delivering twice), the archive ends with one row per
event, carrying Workato's id where any copy had it, the same row every time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from archiver.config import Settings
from archiver.engine import api
from archiver.formats.envelopes import ACTIVITY_API, Envelope
from archiver.formats.normalize import read_activity
from archiver.formats.records import ActivityEvent
from archiver.storage.localfs import LocalStore
from tests.functional.cli.test_cli import archiver_cli, cli_env, one_error_line, single_report
from tests.functional.engine.buckets import (
    assert_same_as_clean,
    bucket_keys,
    get_object,
    new_bucket,
    put_objects,
)
from tests.functional.readback import read_rows

SETTINGS = Settings(concurrency=4, retire_grace_seconds=0)
DAY = dt.date(2025, 3, 12)
EVENTS = [
    ("recipe_stopped", "Flow", 101, "00:06:33"),
    ("recipe_started", "Flow", 101, "00:07:01"),
    ("connection_updated", "Connection", 7, "09:15:00"),
    ("user_login", None, None, "23:59:59"),
]


def stream_body(event: str, resource_type: str | None, resource_id: int | None, clock: str) -> bytes:
    """A user-activity object as Workato streams it: a wrapper around the event, no id."""
    log: dict[str, Any] = {
        "event": event,
        "details": {"stop_reason": "user"} if event == "recipe_stopped" else {},
        "user": {
            "id": 99999,
            "name": "Taylor Cruz",
            "email": "taylor@example.com",
            "environment_type": "dev",
        },
        "team": {"id": 55555, "name": "Operations team", "environment_type": "dev"},
        "timestamp": f"{DAY.isoformat()} {clock}.{412 if clock.endswith('1') else 0:03d} UTC",
    }
    if resource_type is not None:
        log["resource"] = {"type": resource_type, "id": resource_id, "name": f"{resource_type} {resource_id}"}
    return orjson.dumps(
        {"source": "Workato", "UserID": "99999", "log": log, "log_message": orjson.dumps(log).decode()}
    )


def api_record(
    number: int, event: str, resource_type: str | None, resource_id: int | None, clock: str
) -> dict[str, Any]:
    """The same event as the activity audit log API returns it: with Workato's id."""
    record: dict[str, Any] = {
        "id": 900_000 + number,
        "timestamp": f"{DAY.isoformat()} {clock} UTC",
        "event_type": event,
        "workspace": {"id": 55555, "name": "Operations team", "environment": "dev"},
        "user": {"id": 99999, "name": "Taylor Cruz", "email": "taylor@example.com"},
        "details": {"request": {"ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0"}},
    }
    if resource_type is not None:
        record["resource"] = {
            "id": resource_id,
            "name": f"{resource_type} {resource_id}",
            "type": resource_type,
        }
    return record


def api_events() -> list[ActivityEvent]:
    events = []
    for number, spec in enumerate(EVENTS):
        parsed = read_activity(
            Envelope(ACTIVITY_API, api_record(number, *spec)), key="api:/api/activity_logs", etag=""
        )
        assert isinstance(parsed, ActivityEvent)
        parsed.row["source_etag"] = None
        events.append(parsed)
    return events


def write_stream(source: Path, suffix: str = "") -> None:
    for number, spec in enumerate(EVENTS):
        path = source / "99999" / "activity" / DAY.strftime("%Y%m%d") / f"event-{number}{suffix}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stream_body(*spec))


def compact(source: Path, dest: Path) -> api.RunReport:
    dest.mkdir(parents=True, exist_ok=True)
    return asyncio.run(api.compact(LocalStore(source), LocalStore(dest), SETTINGS))


def pull(dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)

    async def run() -> int:
        sink = await api.activity_sink(LocalStore(dest), SETTINGS)
        try:
            return await sink.commit(api_events())
        finally:
            await sink.close()

    return asyncio.run(run())


def activity(dest: Path) -> list[dict[str, Any]]:
    rows = read_rows(dest, "activity")
    return sorted(rows, key=lambda row: (row["occurred_at"], row["event"]))


def identities(rows: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    return [
        (
            r["event"],
            r["occurred_at"].replace(microsecond=0),
            r["user_id"],
            r["resource_type"],
            r["resource_id"],
        )
        for r in rows
    ]


def assert_one_row_per_event_with_ids(rows: list[dict[str, Any]]) -> None:
    assert len(rows) == len(EVENTS)
    assert len(set(identities(rows))) == len(EVENTS)
    assert sorted(row["event_id"] for row in rows) == [str(900_000 + n) for n in range(len(EVENTS))]


Order = Callable[[Path, Path], None]


def stream_then_api(source: Path, dest: Path) -> None:
    write_stream(source)
    compact(source, dest)
    pull(dest)


def api_then_stream(source: Path, dest: Path) -> None:
    pull(dest)
    write_stream(source)
    compact(source, dest)


def api_then_late_stream_then_api_again(source: Path, dest: Path) -> None:
    pull(dest)
    compact(source, dest)  # nothing streamed yet
    write_stream(source)  # the stream copies arrive days late
    compact(source, dest)
    pull(dest)


@pytest.mark.parametrize("order", [stream_then_api, api_then_stream, api_then_late_stream_then_api_again])
def test_stream_and_api_copies_of_an_event_are_one_row_whatever_the_order(
    order: Order, tmp_path: Path
) -> None:
    # GIVEN a source folder and an archive
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    # WHEN both copies of every event arrive in this order
    order(source, dest)
    # THEN one row per event, each carrying Workato's id
    rows = activity(dest)
    assert_one_row_per_event_with_ids(rows)


def test_every_order_ends_in_the_same_rows(tmp_path: Path) -> None:
    # GIVEN the same events archived in three orders
    results = []
    for order in (stream_then_api, api_then_stream, api_then_late_stream_then_api_again):
        source, dest = tmp_path / order.__name__ / "source", tmp_path / order.__name__ / "dest"
        source.mkdir(parents=True)
        order(source, dest)
        results.append(activity(dest))
    # THEN the activity tables are equal row for row (the API copy's row is kept)
    assert results[0] == results[1] == results[2]
    assert all(row["source_key"] == "api:/api/activity_logs" for row in results[0])


def test_the_stream_delivering_an_event_twice_is_one_row_and_the_smaller_key_is_kept(tmp_path: Path) -> None:
    # GIVEN every event streamed twice, under two keys, archived in two runs in either order
    source, dest = tmp_path / "source", tmp_path / "dest"
    write_stream(source, suffix="-b")
    first = compact(source, dest)
    write_stream(source, suffix="-a")
    second = compact(source, dest)
    # THEN one row per event; the report counted the new rows only once
    rows = activity(dest)
    assert len(rows) == len(EVENTS) and len(set(identities(rows))) == len(EVENTS)
    assert all(row["source_key"].endswith("-a.json") for row in rows)
    assert all(row["event_id"] is None for row in rows)
    assert first.rows["activity"] == len(EVENTS) and second.rows["activity"] == 0


def test_a_rerun_of_either_source_adds_nothing(tmp_path: Path) -> None:
    # GIVEN an archive holding both copies of every event
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    stream_then_api(source, dest)
    before = sorted(p.name for p in dest.rglob("*.parquet"))
    # WHEN the API is pulled again and the stream compacted again
    added = pull(dest)
    report = compact(source, dest)
    # THEN nothing is added or rewritten
    assert added == 0 and report.rows["activity"] == 0
    assert sorted(p.name for p in dest.rglob("*.parquet")) == before
    assert_one_row_per_event_with_ids(activity(dest))


def test_distinct_api_events_that_look_alike_stay_two_rows(tmp_path: Path) -> None:
    # GIVEN two API records with the same name, second, user and resource but different ids
    dest = tmp_path / "dest"
    twins = api_events()[:1] * 2
    twins = [ActivityEvent(twins[0].day, dict(twins[0].row)), ActivityEvent(twins[0].day, dict(twins[0].row))]
    twins[1].row["event_id"] = "999999"

    async def run() -> int:
        dest.mkdir()
        sink = await api.activity_sink(LocalStore(dest), SETTINGS)
        try:
            return await sink.commit(twins)
        finally:
            await sink.close()

    # WHEN they are archived
    added = asyncio.run(run())
    # THEN both are kept
    assert added == 2
    assert sorted(row["event_id"] for row in activity(dest)) == ["900000", "999999"]


# --------------------------------------------------------------------------- a copy of an event rewritten

OTHER = ("recipe_started", "Flow", 202, "10:00:00")
"""An event F that none of EVENTS is."""


def stream_key(source: Path, name: str) -> Path:
    return source / "99999" / "activity" / DAY.strftime("%Y%m%d") / name


def put_stream(source: Path, name: str, body: bytes) -> None:
    path = stream_key(source, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def verify_ok(source: Path, dest: Path) -> bool:
    return asyncio.run(api.verify(LocalStore(source), LocalStore(dest), SETTINGS)).ok


def clean_rows(source: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """The activity table a clean run over the source as it is now makes."""
    clean = tmp_path / "clean"
    compact(source, clean)
    return activity(clean)


@pytest.mark.parametrize("overwritten", ["event-a.json", "event-b.json"])
def test_an_overwritten_copy_of_a_duplicated_event_keeps_the_event_from_its_other_copy(
    overwritten: str, tmp_path: Path
) -> None:
    # GIVEN event E delivered twice by the stream (two objects), archived
    source, dest = tmp_path / "source", tmp_path / "dest"
    for name in ("event-a.json", "event-b.json"):
        put_stream(source, name, stream_body(*EVENTS[0]))
    compact(source, dest)
    # WHEN one of the copies is overwritten with another event F, and compact runs again
    put_stream(source, overwritten, stream_body(*OTHER))
    report = compact(source, dest)
    # THEN the archive holds E (from the copy that still holds it) and F, as a clean run does
    rows = activity(dest)
    assert sorted(row["event"] for row in rows) == ["recipe_started", "recipe_stopped"]
    kept = next(row for row in rows if row["event"] == "recipe_stopped")
    assert kept["source_key"].endswith(".json") and not kept["source_key"].endswith(overwritten)
    assert rows == clean_rows(source, tmp_path)
    assert report.failures == [] and verify_ok(source, dest)
    # AND a rerun reads and writes nothing
    again = compact(source, dest)
    assert (again.requests["get"], again.requests["put"]) == (0, 0)


def test_an_event_leaves_only_when_its_last_copy_is_overwritten(tmp_path: Path) -> None:
    # GIVEN event E delivered three times, archived
    source, dest = tmp_path / "source", tmp_path / "dest"
    names = ("event-a.json", "event-b.json", "event-c.json")
    for name in names:
        put_stream(source, name, stream_body(*EVENTS[0]))
    compact(source, dest)
    # WHEN the copies are overwritten with F one by one (a run after each)
    seen = []
    for name in names:
        put_stream(source, name, stream_body(*OTHER))
        compact(source, dest)
        seen.append(sorted(row["event"] for row in activity(dest)))
        # THEN after each run the archive is what a clean run over the source makes
        assert activity(dest) == clean_rows(source, tmp_path / name)
    # AND E stays while a copy holds it, and leaves with the last one
    assert seen == [["recipe_started", "recipe_stopped"]] * 2 + [["recipe_started"]]


# --------------------------------------------------------------------------- a damaged activity data file


def activity_files(dest: Path) -> list[Path]:
    return sorted((dest / "activity").rglob("*.parquet"))


def damage(path: Path, how: str) -> None:
    """What a mistake or a broken copy can do to a data file."""
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"")


def verify_report(source: Path, dest: Path) -> Any:
    return asyncio.run(api.verify(LocalStore(source), LocalStore(dest), SETTINGS))


@pytest.mark.parametrize("how", ["deleted", "truncated", "emptied"])
def test_a_damaged_activity_file_is_rebuilt_from_the_stream_copies(how: str, tmp_path: Path) -> None:
    # GIVEN the stream's events archived (every event delivered twice), and their data file damaged
    source, dest = tmp_path / "source", tmp_path / "dest"
    write_stream(source, suffix="-a")
    write_stream(source, suffix="-b")
    compact(source, dest)
    (lost,) = activity_files(dest)
    damage(lost, how)
    # WHEN compact runs again, the source unchanged
    report = compact(source, dest)
    # THEN it names the file, fails nothing, and the rows are back as a clean run makes them
    assert report.missing_files == [str(lost.relative_to(dest))]
    assert report.failures == []
    assert activity(dest) == clean_rows(source, tmp_path)
    assert verify_report(source, dest).ok
    # AND a rerun reads and writes nothing
    again = compact(source, dest)
    assert (again.requests["get"], again.requests["put"], again.missing_files) == (0, 0, [])


def test_a_rebuilt_row_of_an_api_event_takes_the_api_copy_again_when_the_day_is_pulled(
    tmp_path: Path,
) -> None:
    # GIVEN events archived from the stream and from the API (the API's rows kept), then their file deleted
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    stream_then_api(source, dest)
    before = activity(dest)
    (lost,) = activity_files(dest)
    lost.unlink()
    # WHEN compact runs: the rows come back from the stream copies, with Workato's ids
    report = compact(source, dest)
    assert report.failures == [] and report.missing_files == [str(lost.relative_to(dest))]
    assert_one_row_per_event_with_ids(activity(dest))
    # AND the API is pulled again
    pull(dest)
    # THEN the archive is as it was: the API copies' rows
    assert activity(dest) == before


def test_a_deleted_file_of_api_only_events_fails_the_run_naming_it_until_the_day_is_pulled_again(
    tmp_path: Path,
) -> None:
    # GIVEN events archived from the API only, and their data file deleted
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    pull(dest)
    before = activity(dest)
    (lost,) = activity_files(dest)
    lost.unlink()
    assert verify_report(source, dest).missing_files == [str(lost.relative_to(dest))]
    # WHEN compact runs from the command line over that day
    day = DAY.isoformat()
    args = ["compact", str(source), str(dest), "--since", day, "--until", day, "--json"]
    result = archiver_cli(args, cli_env(None))
    # THEN it exits 4 with one line naming the file and how to get the events back
    line = one_error_line(result, 4, stdout=None)
    assert str(lost.relative_to(dest)) in line and "pull-activity" in line, line
    assert single_report(result)["missing_files"] == [str(lost.relative_to(dest))]
    # AND the archive no longer claims the file, so pulling the day again restores every event
    assert verify_report(source, dest).ok
    assert pull(dest) == len(EVENTS)
    assert activity(dest) == before


def test_over_s3_a_truncated_activity_file_and_an_overwritten_copy_in_one_run_end_as_a_clean_run(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN every event streamed twice into a bucket and archived from the command line
    source, dest = new_bucket(moto_endpoint, "activity"), new_bucket(moto_endpoint, "activity")
    folder = f"99999/activity/{DAY:%Y%m%d}"
    objects = {f"{folder}/event-{n}{suffix}.json": stream_body(*spec) for n, spec in enumerate(EVENTS)
               for suffix in ("-a", "-b")}  # fmt: skip
    put_objects(moto_endpoint, source, objects)
    urls = [f"s3://{source}/", f"s3://{dest}/"]
    env = cli_env(moto_endpoint, ARCHIVER_RETIRE_GRACE_SECONDS="0")
    assert archiver_cli(["compact", *urls, "--json"], env).returncode == 0
    # AND then the activity file truncated to half, and the kept copy of one event overwritten with F
    (damaged,) = [key for key in bucket_keys(moto_endpoint, dest, "activity/") if key.endswith(".parquet")]
    body = get_object(moto_endpoint, dest, damaged)
    put_objects(moto_endpoint, dest, {damaged: body[: len(body) // 2]})
    put_objects(moto_endpoint, source, {f"{folder}/event-0-a.json": stream_body(*OTHER)})
    # WHEN compact runs again
    result = archiver_cli(["compact", *urls, "--json"], env)
    # THEN it exits 0 naming the damaged file, and the archive is the one a clean run makes
    assert result.returncode == 0, result.stderr
    assert single_report(result)["missing_files"] == [damaged]
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path)
    assert archiver_cli(["verify", *urls], env).returncode == 0
    # AND a rerun reads and writes nothing
    again = single_report(archiver_cli(["compact", *urls, "--json"], env))
    assert (again["requests"]["get"], again["requests"]["put"]) == (0, 0)  # type: ignore[index]
