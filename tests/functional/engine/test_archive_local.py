"""The whole pipeline on local folders: a synthetic corpus in, an archive checked row by row out."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from archiver.config import Settings
from archiver.engine.api import RunReport, compact, compact_urls
from archiver.engine.ledger import WATERMARK_ROOT
from archiver.local.synth import CorpusSummary, write_corpus
from archiver.storage.localfs import LocalStore
from tests.functional.oracle import assert_final_jobs
from tests.functional.readback import data_files, read_rows
from tests.unit.engine.descendants import child_pids

SETTINGS = Settings(concurrency=16, retire_grace_seconds=0)


def run(source: Path, dest: Path, settings: Settings = SETTINGS) -> RunReport:
    return asyncio.run(compact(LocalStore(source), LocalStore(dest), settings))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CorpusSummary]:
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(root, jobs=400, seed=11, days=20, start=dt.date(2024, 8, 25))


@pytest.fixture(scope="module")
def archived(
    corpus: tuple[Path, CorpusSummary], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, RunReport]:
    dest = tmp_path_factory.mktemp("archive")
    return dest, run(corpus[0], dest)


def test_jobs_table_holds_the_final_state_of_every_job(
    corpus: tuple[Path, CorpusSummary], archived: tuple[Path, RunReport]
) -> None:
    # GIVEN a corpus whose truths say which version of each job must win
    _, summary = corpus
    expected = summary.expected
    # WHEN the archive is read back with DuckDB
    rows = read_rows(archived[0], "jobs")
    # THEN there is one row per job, and it is the final version, field by field
    assert_final_jobs(rows, expected)


def test_job_lines_come_from_the_winning_object(
    corpus: tuple[Path, CorpusSummary], archived: tuple[Path, RunReport]
) -> None:
    expected = corpus[1].expected
    jobs = {row["job_id"]: row for row in read_rows(archived[0], "jobs")}
    lines = read_rows(archived[0], "job_lines")
    assert len(lines) == expected.job_lines
    assert sum(1 for line in lines if line["masked"]) == expected.masked_lines
    assert sum(1 for line in lines if line["duration_s"] is not None) == expected.timed_lines
    per_job = Counter(line["job_id"] for line in lines)
    for job_id, count in per_job.items():
        assert jobs[job_id]["line_count"] == count
    assert all(line["source_key"] == jobs[line["job_id"]]["source_key"] for line in lines)


def test_activity_and_quarantine_hold_every_other_object(
    corpus: tuple[Path, CorpusSummary], archived: tuple[Path, RunReport]
) -> None:
    expected = corpus[1].expected
    activity = read_rows(archived[0], "activity")
    assert len(activity) == expected.activity
    assert Counter(row["date"] for row in activity) == Counter(expected.activity_by_day)
    quarantine = {row["source_key"]: row["reason"] for row in read_rows(archived[0], "quarantine")}
    assert quarantine == expected.quarantine
    assert all(row["detail"] for row in read_rows(archived[0], "quarantine"))


def test_report_accounts_for_every_object(
    corpus: tuple[Path, CorpusSummary], archived: tuple[Path, RunReport]
) -> None:
    summary = corpus[1]
    report = archived[1]
    assert report.objects_listed == summary.objects
    assert report.objects_quarantined == summary.quarantined
    assert report.objects_failed == 0
    assert (
        report.objects_archived + report.objects_skipped + report.objects_quarantined == report.objects_listed
    )
    assert report.objects_skipped == summary.skipped
    assert report.rows["jobs"] == summary.jobs
    assert report.rows["job_lines"] == summary.job_lines
    assert report.rows["activity"] == summary.activity_events


def test_rerun_reads_nothing_and_leaves_the_same_archive(
    corpus: tuple[Path, CorpusSummary], tmp_path: Path
) -> None:
    # GIVEN an archive built once
    first = run(corpus[0], tmp_path)
    before = {table: read_rows(tmp_path, table) for table in ("jobs", "job_lines", "activity", "quarantine")}
    files_before = data_files(tmp_path)
    # WHEN the same source is archived again
    second = run(corpus[0], tmp_path)
    # THEN nothing is read or written, and the archive is unchanged
    assert first.objects_archived > 0
    assert second.requests["get"] == 0
    assert second.requests["put"] == 0
    assert second.objects_archived == 0
    assert second.objects_skipped == second.objects_listed
    assert data_files(tmp_path) == files_before
    for table, rows in before.items():
        assert sorted(map(repr, read_rows(tmp_path, table))) == sorted(map(repr, rows))


def test_concurrency_does_not_change_the_archive(corpus: tuple[Path, CorpusSummary], tmp_path: Path) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    serial.mkdir()
    parallel.mkdir()
    asyncio.run(compact(LocalStore(corpus[0]), LocalStore(serial), replace(SETTINGS, concurrency=1)))
    asyncio.run(compact(LocalStore(corpus[0]), LocalStore(parallel), replace(SETTINGS, concurrency=64)))
    for table in ("jobs", "job_lines", "activity", "quarantine"):
        left = sorted(map(repr, read_rows(serial, table)))
        right = sorted(map(repr, read_rows(parallel, table)))
        assert left == right, table


def test_window_limits_the_days_archived(corpus: tuple[Path, CorpusSummary], tmp_path: Path) -> None:
    since, until = dt.date(2024, 9, 1), dt.date(2024, 9, 3)
    run(corpus[0], tmp_path, Settings(since=since, until=until))
    days = {row["date"] for row in read_rows(tmp_path, "jobs")}
    assert days and days <= {since + dt.timedelta(days=i) for i in range(3)}
    expected = sum(count for day, count in corpus[1].expected.jobs_by_day.items() if since <= day <= until)
    assert len(read_rows(tmp_path, "jobs")) == expected


def test_one_process_per_shard_of_days_writes_the_same_archive(
    corpus: tuple[Path, CorpusSummary], archived: tuple[Path, RunReport], tmp_path: Path
) -> None:
    # GIVEN the archive one process wrote
    single, one_process = archived
    # WHEN the same corpus is archived by three worker processes, each a shard of the days
    sharded = asyncio.run(compact_urls(str(corpus[0]), str(tmp_path), replace(SETTINGS, parse_workers=3)))
    # THEN every table holds the same rows, and the merged report adds up to the same counts
    for table in ("jobs", "job_lines", "activity", "quarantine"):
        assert sorted(map(repr, read_rows(tmp_path, table))) == sorted(map(repr, read_rows(single, table)))
    assert sharded.objects_listed == one_process.objects_listed
    assert sharded.objects_archived == one_process.objects_archived
    assert sharded.rows == one_process.rows
    assert 0 < sharded.by_store["source"]["get"] == one_process.by_store["source"]["get"] <= corpus[1].objects
    # AND the watermark moved once every shard finished, so a rerun reads nothing
    assert list((tmp_path / WATERMARK_ROOT).iterdir())
    again = asyncio.run(compact_urls(str(corpus[0]), str(tmp_path), replace(SETTINGS, parse_workers=3)))
    assert again.requests.get("get", 0) == 0
    assert again.objects_archived == 0


def test_a_shard_whose_worker_process_dies_is_a_failure_and_the_rerun_completes(
    corpus: tuple[Path, CorpusSummary], archived: tuple[Path, RunReport], tmp_path: Path
) -> None:
    # GIVEN a run over two shard processes whose workers are SIGKILLed as soon as one has written a file
    killed: list[int] = []

    def kill_workers() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            if any(tmp_path.glob("jobs/*/*.parquet")):
                for pid in child_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_workers)
    killer.start()
    settings = replace(SETTINGS, parse_workers=2)
    try:
        report = asyncio.run(compact_urls(str(corpus[0]), str(tmp_path), settings))
    finally:
        killer.join()
    # THEN the run ends with the lost shards as failures (no traceback) and the watermark unmoved
    assert killed
    assert report.failed_units and all(unit.startswith("shard=") for unit in report.failed_units)
    assert {failure["kind"] for failure in report.failures} == {"WorkerProcessDied"}
    assert not (tmp_path / WATERMARK_ROOT).exists()
    # AND the next run completes the archive, row for row the one-process archive
    again = asyncio.run(compact_urls(str(corpus[0]), str(tmp_path), settings))
    assert again.failures == []
    for table in ("jobs", "job_lines", "activity", "quarantine"):
        assert sorted(map(repr, read_rows(tmp_path, table))) == sorted(
            map(repr, read_rows(archived[0], table))
        )
