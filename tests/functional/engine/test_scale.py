"""Cost follows the work (issue 7): a large day split into bounded units, commits that cost what is new.

Over a real moto server on loopback. A day holding more than `unit_max_objects`
objects is planned into several units whose split is recorded in the archive;
archiving every unit in its own process ends in the archive one clean run makes.
Adding a few objects to a large archived day reads and writes what is new, not
what the day already holds: asserted on the stores' own request and byte counts,
never on time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from archiver.engine import ledger
from archiver.engine.api import RunReport, plan
from archiver.local.moto_server import MAX_KEYS_VARIABLE, upload_tree
from archiver.local.synth import KIND_JOB, SynthObject, generate, write_corpus
from tests.functional.cli.test_cli import archiver_cli, cli_env
from tests.functional.engine.buckets import (
    SETTINGS,
    assert_same_as_clean,
    bucket_keys,
    download,
    heads,
    new_bucket,
    put_objects,
    run_compact,
    run_compact_keys,
    s3_store,
)
from tests.functional.faults import CrashingStore
from tests.functional.readback import read_rows

DAY = dt.date(2024, 8, 20)
ROOT = "day=2024-08-20"
LIMIT = 50
SPLIT = replace(SETTINGS, unit_max_objects=LIMIT)
PARALLEL = 4


def new_jobs(count: int, seed: int) -> list[SynthObject]:
    """`count` final job objects of DAY from a corpus of another seed: new job folders, never seen before."""
    finals = [
        obj
        for obj in generate(count * 2, seed=seed, start=DAY, days=1)
        if obj.truth.kind == KIND_JOB and obj.truth.is_final
    ]
    assert len(finals) >= count
    return finals[:count]


# --------------------------------------------------------------------------- a day split into units


def plan_lines(source: str, dest: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """What `archiver plan SOURCE DEST` prints, one JSON object a line."""
    result = archiver_cli(["plan", f"s3://{source}/", f"s3://{dest}/"], env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def planned_units(endpoint: str, source: str, dest: str) -> list[dict[str, object]]:
    """The same lines from the engine's `plan` in this process (what the command line prints)."""

    async def main() -> list[dict[str, object]]:
        src, dst = s3_store(source, endpoint), s3_store(dest, endpoint)
        try:
            return [unit.as_dict() for unit in await plan(src, dst, SPLIT)]
        finally:
            await src.close()
            await dst.close()

    return asyncio.run(main())


def source_units(folder: Path) -> dict[str, ledger.Head]:
    """The heads of the units that hold source objects (not the per-day activity ledgers)."""
    return {unit: head for unit, head in heads(folder).items() if unit.startswith(("day=", "loose="))}


def index_keys(folder: Path, head: ledger.Head) -> set[str]:
    """The distinct source keys a unit's index segments hold."""
    return {
        entry.key
        for segment in head.segments
        for entry in ledger.decode_index((folder / segment.key).read_bytes())
    }


def compact_units_in_parallel(
    source: str, dest: str, units: list[str], env: dict[str, str]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """`archiver compact --unit NAME` for every unit, each in its own process, PARALLEL at a time.

    A few at once are enough for workers to meet on the same day's ledger; a dozen at
    once on a 2-core machine only make each of them slower.
    """
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        futures = {
            unit: pool.submit(
                archiver_cli, ["compact", f"s3://{source}/", f"s3://{dest}/", "--unit", unit, "--json"], env
            )
            for unit in units
        }
        return {unit: future.result() for unit, future in futures.items()}


def test_a_day_split_into_units_archived_by_parallel_processes_is_one_clean_run(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN one day of 300-odd objects and a unit limit of 50 objects
    corpus = tmp_path / "corpus"
    summary = write_corpus(corpus, jobs=240, seed=7, start=DAY, days=1)
    assert summary.objects > 300
    source, dest = new_bucket(moto_endpoint, "scale"), new_bucket(moto_endpoint, "scale")
    upload_tree(moto_endpoint, source, corpus)
    env = cli_env(moto_endpoint, ARCHIVER_UNIT_MAX_OBJECTS=str(LIMIT), ARCHIVER_RETIRE_GRACE_SECONDS="0")
    json_objects = sum(1 for path in corpus.rglob("*") if path.name.endswith(".json"))
    # WHEN the archive plans it
    planned = plan_lines(source, dest, env)
    # THEN the day is printed as several units, none over the limit, together holding the whole day
    day_units = [line for line in planned if line["unit"].startswith(ROOT + ".")]
    assert len(day_units) >= 4, planned
    assert all(line["objects"] <= LIMIT for line in planned), planned
    assert sum(line["objects"] for line in planned) == json_objects
    assert ROOT not in {line["unit"] for line in planned}
    units = [line["unit"] for line in planned]
    assert len(units) == len(set(units))
    # AND the split is recorded in the archive: the day's head names its children
    recorded = heads(download(moto_endpoint, dest, tmp_path / "planned"))
    assert [child.unit for child in recorded[ROOT].children] == [line["unit"] for line in day_units]

    # WHEN every unit is archived by its own process, several at once
    results = compact_units_in_parallel(source, dest, units, env)
    # THEN every process succeeds
    for unit, result in results.items():
        assert result.returncode == 0, (unit, result.stderr)
    # AND the archive is exactly the one a single clean run makes, table by table, row by row
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "parallel")
    # AND no unit holds more than the limit
    folder = download(moto_endpoint, dest, tmp_path / "after")
    for unit, head in source_units(folder).items():
        assert len(index_keys(folder, head)) <= LIMIT, unit
    # AND verify is clean, and planning again prints the same units
    verified = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    assert verified.returncode == 0, verified.stderr
    assert [line["unit"] for line in planned_units(moto_endpoint, source, dest)] == units

    # GIVEN late arrivals: new jobs in that day
    late = new_jobs(40, seed=99)
    put_objects(moto_endpoint, source, {obj.key: obj.body for obj in late})
    # WHEN the archive plans the day again
    replanned = planned_units(moto_endpoint, source, dest)
    # THEN the day's split is kept: the same children, and every unit printed is one of the units
    # printed before or a part of one (a unit that outgrew the limit is split below itself)
    again = heads(download(moto_endpoint, dest, tmp_path / "replanned"))
    assert again[ROOT].children == recorded[ROOT].children
    for line in replanned:
        assert any(line["unit"] == unit or line["unit"].startswith(unit + ".") for unit in units), line
        assert line["objects"] <= LIMIT, line
    for unit in units:
        assert any(line["unit"] == unit or line["unit"].startswith(unit + ".") for line in replanned), unit
    # AND one plain compact archives them, into an archive a clean run over the final source equals
    report = run_compact(s3_store(source, moto_endpoint), s3_store(dest, moto_endpoint), SPLIT)
    assert report.failures == []
    assert report.objects_archived == len(late)
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "late")
    folder = download(moto_endpoint, dest, tmp_path / "final")
    for unit, head in source_units(folder).items():
        assert len(index_keys(folder, head)) <= LIMIT, unit


# --------------------------------------------------------------------------- a few objects into a large day

LARGE = replace(SETTINGS, unit_max_objects=500)
"""A day of a few thousand objects is then several units, as a 200k-job day is under the default limit."""
NEW = 5
COMMIT_BYTES_BOUND = 256 * 1024
"""What committing 5 jobs may write, whatever the day holds. Per unit the commit touches: one small jobs
file and one job_lines file (Parquet of a handful of rows: about 10 KB each, mostly footer and column
headers), one index segment of at most 5 entries (a few KB; it names the uploads, so no intent record
is needed) and a new head (a few KB: the head lists the unit's files and segments, which tiered merges
keep few). Under 50 KB a unit, and 5 objects touch at most 5 units."""


@dataclass(frozen=True, slots=True)
class LargeDay:
    corpus: Path  # the source objects, as files
    archive: Path  # the archive the first run made, as files (ledger included)
    objects: int
    first: RunReport = field(repr=False)
    units: int  # units that hold the day after the first run


S3_PAGE_SIZE = "1000"
"""S3's own listing page size: these tests count requests, so the server pages as S3 does."""


@pytest.fixture
def s3_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's moto server (in this process) reads its page size from the environment per request."""
    monkeypatch.setenv(MAX_KEYS_VARIABLE, S3_PAGE_SIZE)


@pytest.fixture(scope="module")
def large_day(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> LargeDay:
    """One day of a few thousand objects archived once, kept as folders to clone buckets from."""
    corpus = tmp_path_factory.mktemp("large-day")
    summary = write_corpus(corpus, jobs=1700, seed=5, start=DAY, days=1)
    source, dest = new_bucket(moto_endpoint, "large"), new_bucket(moto_endpoint, "large")
    upload_tree(moto_endpoint, source, corpus)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(MAX_KEYS_VARIABLE, S3_PAGE_SIZE)
        first = run_compact(s3_store(source, moto_endpoint), s3_store(dest, moto_endpoint), LARGE)
    assert first.failures == []
    archive = download(moto_endpoint, dest, tmp_path_factory.mktemp("large-archive"))
    units = [unit for unit in heads(archive) if unit.startswith(ROOT + ".")]
    return LargeDay(corpus, archive, summary.objects, first, len(units))


@dataclass(slots=True)
class Rerun:
    source: str
    dest: str
    new: list[SynthObject]
    heads_before: dict[str, str]


def with_five_new_jobs(endpoint: str, day: LargeDay) -> Rerun:
    """Fresh copies of the large day's source and archive buckets, and five new jobs in the source."""
    source, dest = new_bucket(endpoint, "large"), new_bucket(endpoint, "large")
    upload_tree(endpoint, source, day.corpus)
    upload_tree(endpoint, dest, day.archive)
    new = new_jobs(NEW, seed=77)
    put_objects(endpoint, source, {obj.key: obj.body for obj in new})
    return Rerun(source, dest, new, head_etags(endpoint, dest))


def head_etags(endpoint: str, dest: str) -> dict[str, str]:
    return {
        key: etag
        for key, etag in bucket_keys(endpoint, dest, ledger.LEDGER_ROOT).items()
        if key.endswith("/" + ledger.HEAD_NAME)
    }


def unit_of(key: str) -> str:
    return key[len(ledger.LEDGER_ROOT) :].split("/", 1)[0]


def test_a_commit_of_five_objects_into_a_large_day_writes_what_is_new(
    moto_endpoint: str, large_day: LargeDay, s3_pages: None, tmp_path: Path
) -> None:
    # GIVEN a day of a few thousand objects, archived as several units, and five new jobs in it
    assert large_day.objects > 2000
    assert large_day.units >= 4
    rerun = with_five_new_jobs(moto_endpoint, large_day)
    source, dest = s3_store(rerun.source, moto_endpoint), s3_store(rerun.dest, moto_endpoint)
    # WHEN compact runs again
    report = run_compact(source, dest, LARGE)
    # THEN it read exactly the five new objects from the source
    assert report.failures == []
    assert report.objects_archived == NEW
    assert source.counts.get == NEW and source.counts.put == 0
    assert source.counts.bytes_read == sum(len(obj.body) for obj in rerun.new)
    # AND what it wrote is what is new: far below the first run, and within a fixed bound
    assert report.bytes_written == dest.counts.bytes_written
    assert report.bytes_written < large_day.first.bytes_written / 10
    assert report.bytes_written < COMMIT_BYTES_BOUND
    # AND the archive's writes are a commit per unit touched, not per unit of the day
    after = head_etags(moto_endpoint, rerun.dest)
    touched = {unit_of(key) for key, etag in after.items() if rerun.heads_before.get(key) != etag}
    assert 1 <= len(touched) <= NEW
    # per unit touched: intent, jobs, job_lines, segment, head, its settled marker; the day's seen marker
    assert dest.counts.put <= 6 * len(touched) + 1
    assert dest.counts.delete <= 2 * len(touched) + 1  # the intent and the stale marker; the day's
    # AND the five jobs are in the jobs table, each once, next to every earlier one
    jobs = read_rows(download(moto_endpoint, rerun.dest, tmp_path / "archive"), "jobs")
    assert len(jobs) == large_day.first.rows["jobs"] + NEW
    assert {obj.key for obj in rerun.new} <= {row["source_key"] for row in jobs}
    assert len({(row["user_id"], row["job_id"]) for row in jobs}) == len(jobs)


def test_a_commit_of_five_objects_into_a_large_day_reads_only_the_indexes_of_the_units_it_touches(
    moto_endpoint: str, large_day: LargeDay, s3_pages: None
) -> None:
    # GIVEN a day archived as several units, and five new jobs in it
    rerun = with_five_new_jobs(moto_endpoint, large_day)
    dest = CrashingStore(s3_store(rerun.dest, moto_endpoint))  # crash_at=None: it only records calls
    # WHEN compact runs again
    report = run_compact(s3_store(rerun.source, moto_endpoint), dest, LARGE)
    assert report.failures == []
    # THEN the only index segments it read are those of the units it committed to and of the units
    # above them (every unit's small head may be read to route the day's keys; a whole index may not)
    after = head_etags(moto_endpoint, rerun.dest)
    touched = {unit_of(key) for key, etag in after.items() if rerun.heads_before.get(key) != etag}
    above = {unit.rsplit(".", depth)[0] for unit in touched for depth in range(1, unit.count(".") + 1)}
    segments = [
        call.key
        for call in dest.calls
        if call.kind == "get" and call.key.rsplit("/", 1)[-1].startswith(ledger.SEGMENT_PREFIX)
    ]
    assert segments
    read = {unit_of(key) for key in segments}
    assert read <= touched | above, sorted(read - touched - above)


def test_an_event_for_five_new_keys_archives_them_without_listing_the_source(
    moto_endpoint: str, large_day: LargeDay, s3_pages: None, tmp_path: Path
) -> None:
    # GIVEN a large archived day and five new jobs in it, named by S3 event notifications
    rerun = with_five_new_jobs(moto_endpoint, large_day)
    source, dest = s3_store(rerun.source, moto_endpoint), s3_store(rerun.dest, moto_endpoint)
    keys = [obj.key for obj in rerun.new]
    # WHEN the keys are archived as events
    report = run_compact_keys(source, dest, keys, LARGE)
    # THEN the source was never listed: each key was inspected and read once
    assert report.failures == [] and report.unarchived_keys == []
    assert source.counts.list == 0
    assert (source.counts.head, source.counts.get) == (NEW, NEW)
    assert report.objects_archived == NEW
    # AND the jobs are archived, and a plain compact afterwards finds nothing left to do
    jobs = read_rows(download(moto_endpoint, rerun.dest, tmp_path / "archive"), "jobs")
    assert {obj.key for obj in rerun.new} <= {row["source_key"] for row in jobs}
    assert len(jobs) == large_day.first.rows["jobs"] + NEW
    after = run_compact(s3_store(rerun.source, moto_endpoint), s3_store(rerun.dest, moto_endpoint), LARGE)
    assert after.failures == [] and after.objects_archived == 0
