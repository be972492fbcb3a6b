"""The publisher under stress: rival publishers, a crash mid-commit, a lost catalog, old snapshots' files.

A table is a function of the ledger: whatever happens to a publish, the next one
brings the table to the ledger's state, and a superseded file is deleted only once
no retained snapshot refers to it (right after the commit when there are no tables).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from archiver.engine import api
from archiver.engine.publish import publisher
from archiver.storage.localfs import LocalStore
from tests.functional.cli.test_cli import archiver_cli, cli_env, single_report
from tests.functional.engine.buckets import heads
from tests.functional.engine.test_publish import (
    DAY1,
    SETTINGS,
    assert_tables_are_the_ledger,
    compact,
    finished,
    publish,
    running,
    write,
)
from tests.functional.faults import SimulatedCrash
from tests.functional.iceberg import local_catalog, pyiceberg_rows, table, tables_both_ways


def archive_unpublished(source: Path, dest: Path) -> None:
    """A compact that does not publish (a unit worker's), so that a test publishes itself."""
    dest.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(api.compact(LocalStore(source), LocalStore(dest), SETTINGS))
    assert report.failures == []


def test_two_publishers_at_once_end_in_the_same_table(tmp_path: Path) -> None:
    # GIVEN an archive published once, then a late version of some jobs committed to the ledger
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(12))
    compact(source, dest)
    write(source, finished(5))
    archive_unpublished(source, dest)

    # WHEN two publishers run at once
    async def both() -> list[api.PublishReport]:
        return list(await asyncio.gather(*(api.publish(str(dest), SETTINGS) for _ in range(2))))

    reports = asyncio.run(both())
    # THEN both finish, the tables hold the ledger's rows once, and a third publish has nothing to do
    assert [report.failures for report in reports] == [[], []]
    assert_tables_are_the_ledger(dest)
    assert publish(dest).commits == 0


def test_a_publisher_beaten_by_a_rival_recomputes_and_commits_the_ledger_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a ledger with a late version not yet published, and a rival that publishes it
    # right before our publisher's first commit
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(6))
    compact(source, dest)
    write(source, finished(3))
    archive_unpublished(source, dest)
    commit_change = publisher.commit_change
    rival_ran: list[api.PublishReport] = []
    started: list[bool] = []

    def commit_after_rival(*args: Any) -> Any:
        if not started:  # our first commit: the rival publishes first (its own commits go straight through)
            started.append(True)
            rival_ran.append(asyncio.run(api.publish(str(dest), SETTINGS)))
        return commit_change(*args)

    monkeypatch.setattr(publisher, "commit_change", commit_after_rival)
    # WHEN our publisher runs
    report = publish(dest)
    # THEN its first commit lost, was logged as a conflict, recomputed from the new table, and the
    # tables hold the ledger's rows with nothing committed twice
    assert rival_ran and rival_ran[0].commits >= 1
    assert report.commit_conflicts >= 1 and report.failures == []
    assert_tables_are_the_ledger(dest)


def test_a_publisher_killed_mid_commit_leaves_a_readable_table_and_the_next_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a published archive, then a late version in the ledger
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(6))
    compact(source, dest)
    before = tables_both_ways(local_catalog(dest))
    write(source, finished(3))
    archive_unpublished(source, dest)
    # WHEN the publisher dies as it commits to the catalog (its manifests are written by then)
    commit_table = SqlCatalog.commit_table

    def die(*args: Any, **kwargs: Any) -> Any:
        raise SimulatedCrash("killed during the catalog commit")

    monkeypatch.setattr(SqlCatalog, "commit_table", die)
    with pytest.raises(SimulatedCrash):
        publish(dest)
    # THEN the tables read as they were
    assert tables_both_ways(local_catalog(dest)) == before
    # AND the next publish brings them to the ledger's state
    monkeypatch.setattr(SqlCatalog, "commit_table", commit_table)
    assert publish(dest).failures == []
    assert_tables_are_the_ledger(dest)


def test_rebuild_after_losing_the_catalog_reproduces_the_same_rows(tmp_path: Path) -> None:
    # GIVEN a published archive with a late version in it
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(8) | finished(3))
    compact(source, dest)
    published = tables_both_ways(local_catalog(dest))
    # WHEN its catalog is lost and `archiver publish DEST --rebuild` runs
    (dest / "_archiver" / "iceberg.db").unlink()
    result = archiver_cli(["publish", str(dest), "--rebuild", "--json"], cli_env(None))
    # THEN it exits 0 with its report, and the tables hold the same rows as before
    assert result.returncode == 0, result.stderr
    report = single_report(result)
    assert report["rebuilt"] is True and report["commits"] == 2  # jobs and job_lines; the others are empty
    assert tables_both_ways(local_catalog(dest)) == published


def test_a_superseded_file_stays_while_a_snapshot_refers_to_it_and_goes_after_the_retention(
    tmp_path: Path,
) -> None:
    # GIVEN running jobs published, then a late version whose commit superseded their file
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(3))
    compact(source, dest)
    first = {key for key in heads(dest)[f"day={dt.date(2024, 8, 20)}"].file_keys() if key.startswith("jobs/")}
    old_snapshot = table(local_catalog(dest), "jobs").current_snapshot()
    assert old_snapshot is not None
    write(source, finished(1))
    compact(source, dest)
    # THEN the superseded file is still there: the earlier snapshot reads it
    assert all((dest / key).exists() for key in first)
    assert len(pyiceberg_rows(local_catalog(dest), "jobs", old_snapshot.snapshot_id)) == 3
    # WHEN a publish runs after the retention has passed
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SETTINGS.snapshot_retention_seconds + 60)
    report = publish(dest, clock=lambda: later)
    # THEN the old snapshots are expired, the file only they held is deleted, no head names it,
    # and the current tables are untouched
    assert report.snapshots_expired >= 1 and report.files_deleted >= len(first)
    assert not any((dest / key).exists() for key in first)
    assert all(not head.retired for head in heads(dest).values())
    assert_tables_are_the_ledger(dest)


def test_a_superseded_file_no_snapshot_ever_held_is_deleted_by_the_next_publish(tmp_path: Path) -> None:
    # GIVEN a published archive, then two late versions committed one after the other with no
    # publish in between: the file the first wrote was superseded before any table held it
    source, dest = tmp_path / "source", tmp_path / "dest"
    write(source, running(3))
    compact(source, dest)
    write(source, finished(1))
    archive_unpublished(source, dest)
    unit = f"day={dt.date(2024, 8, 20)}"
    between = {key for key in heads(dest)[unit].file_keys() if key.startswith("jobs/")}
    final = {
        "5234/jobs/234/20240820/j-20240820-0/5234-234-j-20240820-0-20240820120000-succeeded.json": b"{}",
    }
    write(source, {key: finished(1)[next(iter(finished(1)))] for key in final})
    archive_unpublished(source, dest)
    never_published = between - heads(dest)[unit].file_keys()
    assert never_published and all((dest / key).exists() for key in never_published)
    # WHEN the tables are published
    report = publish(dest)
    # THEN that file is deleted at once (no snapshot can refer to it), its entry is gone from the head,
    # and the tables hold the ledger's rows
    assert report.failures == []
    assert not any((dest / key).exists() for key in never_published)
    assert not {item.key for item in heads(dest)[unit].retired} & never_published
    assert_tables_are_the_ledger(dest)
    assert DAY1 == "20240820"
