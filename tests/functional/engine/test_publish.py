"""Iceberg tables: readers see every row exactly once, at every moment, and can read an earlier snapshot.

Each scenario is one the issue found duplicates in, with glob readers: a late version
of jobs, many small SQS-like batches whose merges retire files, and activity streamed
then pulled from the API. After every step the tables are read through pyiceberg and
through DuckDB's iceberg_scan, and must hold exactly the ledger's committed rows; at
the end, exactly what a clean run over the final source publishes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from archiver.config import Settings
from archiver.engine import api
from archiver.storage.localfs import LocalStore
from tests.functional.engine.buckets import TABLES, committed_rows, job_body, standard_key
from tests.functional.engine.test_activity_merge import EVENTS, api_events, write_stream
from tests.functional.iceberg import (
    canonical,
    duckdb_rows,
    local_catalog,
    pyiceberg_rows,
    table,
    tables_both_ways,
)

SETTINGS = Settings(concurrency=4, parse_workers=1)
DAY1, DAY2 = "20240820", "20240821"


def write(source: Path, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        path = source / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def running(count: int, day: str = DAY1, offset: int = 0) -> dict[str, bytes]:
    return {
        standard_key("5234", "234", day, f"j-{day}-{n}", f"{day}100000", "running"): job_body(
            f"j-{day}-{n}", status="running", completed_at=None
        )
        for n in range(offset, offset + count)
    }


def finished(count: int, day: str = DAY1) -> dict[str, bytes]:
    return {
        standard_key("5234", "234", day, f"j-{day}-{n}", f"{day}110000", "succeeded"): job_body(
            f"j-{day}-{n}", title="done", lines=3
        )
        for n in range(count)
    }


def compact(source: Path, dest: Path, settings: Settings = SETTINGS) -> api.RunReport:
    report = asyncio.run(api.compact_urls(str(source), str(dest), settings))
    assert report.failures == [], report.failures
    return report


def publish(dest: Path, settings: Settings = SETTINGS, **options: Any) -> api.PublishReport:
    return asyncio.run(api.publish(str(dest), settings, **options))


def ledger_view(dest: Path) -> dict[str, list[str]]:
    """What the ledger holds: the rows of the files the committed heads name (hive `date` left out)."""
    return {name: canonical(committed_rows(dest, name), drop=("date",)) for name in TABLES}


def assert_tables_are_the_ledger(dest: Path) -> dict[str, list[str]]:
    """The tables (through pyiceberg and DuckDB) hold the ledger's rows, and every job and line once."""
    tables = tables_both_ways(local_catalog(dest))
    assert tables == ledger_view(dest)
    rows = pyiceberg_rows(local_catalog(dest), "jobs")
    assert max(Counter((row["user_id"], row["job_id"]) for row in rows).values(), default=1) == 1
    lines = pyiceberg_rows(local_catalog(dest), "job_lines")
    assert max(Counter((row["job_id"], row["line_index"]) for row in lines).values(), default=1) == 1
    return tables


def statuses(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {row["job_id"]: row["status"] for row in rows}


def clean_tables(source: Path, scratch: Path, settings: Settings = SETTINGS) -> dict[str, list[str]]:
    compact(source, scratch, settings)
    return tables_both_ways(local_catalog(scratch))


def test_a_new_day_then_late_versions_then_a_rerun_show_every_job_once(tmp_path: Path) -> None:
    # GIVEN a day of running jobs archived (and published by compact)
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(30))
    compact(source, dest)
    assert_tables_are_the_ledger(dest)
    # WHEN a new day arrives with late final versions of 20 of the first day's jobs, and then a rerun
    write(source, running(10, DAY2) | finished(20))
    compact(source, dest)
    after_late = assert_tables_are_the_ledger(dest)
    rerun = compact(source, dest)
    # THEN every step's tables hold every job and line once, the rerun commits nothing,
    # and the tables equal a clean run's over the final source
    assert assert_tables_are_the_ledger(dest) == after_late
    assert rerun.publish is not None and rerun.publish["commits"] == 0
    assert after_late == clean_tables(source, tmp_path / "clean")
    statuses = Counter(row["status"] for row in pyiceberg_rows(local_catalog(dest), "jobs"))
    assert statuses == {"succeeded": 20, "running": 20}


def test_the_snapshot_before_a_late_version_shows_the_old_state(tmp_path: Path) -> None:
    # GIVEN three running jobs archived and published, then a late final version of one of them
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(3))
    compact(source, dest)
    before = table(local_catalog(dest), "jobs").current_snapshot()
    assert before is not None
    write(source, finished(1))
    compact(source, dest)
    # WHEN the table is read as of the earlier snapshot, and as it is now
    catalog = local_catalog(dest)
    readers = (pyiceberg_rows, duckdb_rows)
    then = [
        {row["job_id"]: row["status"] for row in read(catalog, "jobs", before.snapshot_id)}
        for read in readers
    ]
    now = [{row["job_id"]: row["status"] for row in read(catalog, "jobs")} for read in readers]
    # THEN the old snapshot shows the old state and the current one the new (the file it read still exists)
    old = {f"j-{DAY1}-{n}": "running" for n in range(3)}
    assert then == [old, old]
    assert now == [old | {f"j-{DAY1}-0": "succeeded"}] * 2
    # AND the current snapshot is one overwrite that removed the superseded file and added its rewrite
    current = table(catalog, "jobs").current_snapshot()
    assert current is not None and current.summary is not None
    assert current.summary.operation.value == "overwrite"
    assert int(current.summary["deleted-data-files"]) >= 1 and int(current.summary["added-data-files"]) >= 1


def test_many_small_batches_whose_merges_retire_files_show_every_job_once(tmp_path: Path) -> None:
    # GIVEN 60 objects arriving as S3 notifications in batches of 10, with merges after every second file
    source, dest = tmp_path / "source", tmp_path / "dest"
    objects = running(40) | finished(20)
    write(source, objects)
    settings = replace(SETTINGS, max_small_files=2)
    keys = sorted(objects)
    dest.mkdir()
    # WHEN each batch is archived by its keys and the tables published after it (the SQS path's publisher)
    for start in range(0, len(keys), 10):
        report = asyncio.run(
            api.compact_keys(LocalStore(source), LocalStore(dest), settings, keys[start : start + 10])
        )
        assert report.failures == []
        published = publish(dest, settings)
        assert published.failures == []
        # THEN after every publish the tables hold the ledger's rows, every job once
        assert_tables_are_the_ledger(dest)
    # AND the end state is a clean run's
    assert tables_both_ways(local_catalog(dest)) == clean_tables(source, tmp_path / "clean", settings)


def test_activity_streamed_then_pulled_from_the_api_is_one_row_per_event(tmp_path: Path) -> None:
    # GIVEN activity streamed and archived (compact publishes)
    source, dest = tmp_path / "source", tmp_path / "dest"
    write_stream(source)
    compact(source, dest)
    assert len(pyiceberg_rows(local_catalog(dest), "activity")) == len(EVENTS)

    # WHEN the same events are pulled from the API (their copies replace the stream rows) and published
    async def pull() -> int:
        sink = await api.activity_sink(LocalStore(dest), SETTINGS)
        try:
            return await sink.commit(api_events())
        finally:
            await sink.close()

    asyncio.run(pull())
    assert publish(dest).commits == 1
    # THEN the activity table holds one row per event, with Workato's ids, as the ledger does
    assert_tables_are_the_ledger(dest)
    rows = pyiceberg_rows(local_catalog(dest), "activity")
    assert sorted(row["event_id"] for row in rows) == [str(900_000 + n) for n in range(len(EVENTS))]


def test_a_second_publish_commits_nothing(tmp_path: Path) -> None:
    # GIVEN a published archive
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(5))
    compact(source, dest)
    snapshots = {name: table(local_catalog(dest), name).current_snapshot() for name in TABLES}
    # WHEN it is published again
    report = publish(dest)
    # THEN nothing is committed: every table keeps its snapshot
    assert report.commits == 0 and report.failures == []
    assert {name: table(local_catalog(dest), name).current_snapshot() for name in TABLES} == snapshots
