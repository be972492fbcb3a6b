"""The whole pipeline over HTTP: a source bucket on a real moto server into an archive bucket.

The test server answers ListObjects with MOTO_PAGE_SIZE (7) keys a page, so every
level of the walk (users, recipes, days, job folders, the ledger) crosses pages.
Archives are copied out of their bucket into a folder and read back with DuckDB,
row by row, against the truth the synthetic corpus carries about itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from archiver.config import Settings
from archiver.engine.api import RunReport, compact
from archiver.formats.layout import parse_day, parse_key
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket, upload_tree
from archiver.local.synth import KIND_ACTIVITY, CorpusSummary, Truth, generate, write_corpus
from archiver.storage.location import open_store
from archiver.storage.store import Fetched, ListPage, ObjectInfo, ObjectStore, RequestCounts
from tests.functional.oracle import assert_final_jobs
from tests.functional.readback import data_files, read_rows

START = dt.date(2024, 8, 25)
DAYS = 20  # crosses the September 2024 format change
SETTINGS = Settings(concurrency=64, retire_grace_seconds=0)
TABLES = ("jobs", "job_lines", "activity", "quarantine")
WINDOW = (dt.date(2024, 9, 1), dt.date(2024, 9, 3))


# --------------------------------------------------------------------------- helpers


@dataclass(slots=True)
class Listing:
    """One listing a store was asked for, and the keys and common prefixes of each page it answered."""

    prefix: str
    start_after: str | None
    pages: list[list[str]] = field(default_factory=list)


class RecordingStore:
    """An ObjectStore that hands every call to a real store and remembers what it was asked.

    Used as a source to prove what the pipeline lists and reads: `listed` holds every
    listing asked for, with the pages the store answered, and `read` every key fetched.
    """

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.sequential_reads = inner.sequential_reads
        self.counts: RequestCounts = inner.counts  # the same object: the report sees the real counts
        self.listed: list[Listing] = []
        self.read: list[str] = []

    @property
    def url(self) -> str:
        return self.inner.url

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        listing = Listing(prefix, start_after)
        self.listed.append(listing)
        async for page in self.inner.list_pages(prefix, delimiter=delimiter, start_after=start_after):
            listing.pages.append([info.key for info in page.objects] + list(page.prefixes))
            yield page

    async def get(self, key: str) -> Fetched:
        self.read.append(key)
        return await self.inner.get(key)

    async def get_file(self, key: str, path: Path) -> str:
        self.read.append(key)
        return await self.inner.get_file(key, path)

    async def head(self, key: str) -> ObjectInfo | None:
        return await self.inner.head(key)

    async def put(
        self, key: str, body: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        return await self.inner.put(key, body, if_none_match=if_none_match, if_match=if_match)

    async def put_file(self, key: str, path: Path) -> str:
        return await self.inner.put_file(key, path)

    async def delete(self, keys: list[str]) -> None:
        await self.inner.delete(keys)

    async def close(self) -> None:
        await self.inner.close()


def new_bucket(endpoint: str) -> str:
    bucket = f"arch-{uuid.uuid4().hex[:16]}"
    create_bucket(endpoint, bucket)
    return bucket


async def _open(endpoint: str | None, bucket: str) -> ObjectStore:
    """A store built the way entry points build it; explicit endpoint and credentials unless None."""
    if endpoint is None:  # the standard AWS configuration (AWS_ENDPOINT_URL and friends)
        return await open_store(f"s3://{bucket}/")
    return await open_store(f"s3://{bucket}/", endpoint_url=endpoint, credentials=MOTO_CREDENTIALS)


def run(
    endpoint: str | None,
    source_bucket: str,
    dest_bucket: str,
    settings: Settings = SETTINGS,
    *,
    recorder: list[RecordingStore] | None = None,
) -> RunReport:
    """One compact run bucket to bucket over HTTP; `recorder` receives the wrapped source."""

    async def main() -> RunReport:
        source = await _open(endpoint, source_bucket)
        dest = await _open(endpoint, dest_bucket)
        if recorder is not None:
            recording = RecordingStore(source)
            recorder.append(recording)
            source = recording
        try:
            return await compact(source, dest, settings)
        finally:
            await source.close()
            await dest.close()

    return asyncio.run(main())


def download(endpoint: str, bucket: str, folder: Path, tables: tuple[str, ...] = TABLES) -> Path:
    """Copy the tables of an archive bucket into `folder`, so DuckDB reads them as a user would.

    The ledger under `_archiver/` stays behind (readers never need it). Files are
    written plainly rather than through LocalStore, whose fsync per file would
    triple the time of every download here.
    """

    async def main() -> None:
        store = await _open(endpoint, bucket)
        try:
            keys = [
                info.key
                async for page in store.list_pages("")
                for info in page.objects
                if info.key.split("/", 1)[0] in tables
            ]
            gate = asyncio.Semaphore(8)

            async def fetch(key: str) -> None:
                async with gate:
                    body = (await store.get(key)).body
                path = folder.joinpath(*key.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(body)

            await asyncio.gather(*(fetch(key) for key in keys))
        finally:
            await store.close()

    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(main())
    return folder


def bucket_state(endpoint: str, bucket: str) -> dict[str, str]:
    """key -> ETag of every object in a bucket, ledger included."""

    async def main() -> dict[str, str]:
        store = await _open(endpoint, bucket)
        try:
            return {info.key: info.etag async for page in store.list_pages("") for info in page.objects}
        finally:
            await store.close()

    return asyncio.run(main())


def all_rows(root: Path) -> dict[str, list[str]]:
    """Every table's rows in a comparable form (sorted reprs)."""
    return {table: sorted(map(repr, read_rows(root, table))) for table in TABLES}


def assert_counts_add_up(report: RunReport) -> None:
    assert report.objects_listed == (
        report.objects_archived + report.objects_skipped + report.objects_quarantined + report.objects_failed
    )


# --------------------------------------------------------------------------- the corpus and its archive


@dataclass(frozen=True, slots=True)
class Corpus:
    root: Path
    summary: CorpusSummary
    bucket: str
    truths: dict[str, Truth] = field(repr=False)  # key -> what the archive must make of it


@dataclass(frozen=True, slots=True)
class Archived:
    bucket: str
    folder: Path
    report: RunReport = field(repr=False)
    source: RecordingStore = field(repr=False)  # what the run asked of the source


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Corpus:
    root = tmp_path_factory.mktemp("s3-corpus")
    arguments: dict[str, Any] = {"jobs": 80, "seed": 21, "start": START, "days": DAYS}
    summary = write_corpus(root, **arguments)
    bucket = new_bucket(moto_endpoint)
    assert upload_tree(moto_endpoint, bucket, root) == summary.objects
    truths = {obj.key: obj.truth for obj in generate(**arguments)}  # the same objects again, for their truths
    return Corpus(root, summary, bucket, truths)


@pytest.fixture(scope="module")
def archived(corpus: Corpus, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Archived:
    dest = new_bucket(moto_endpoint)
    recorder: list[RecordingStore] = []
    report = run(moto_endpoint, corpus.bucket, dest, recorder=recorder)
    folder = download(moto_endpoint, dest, tmp_path_factory.mktemp("s3-archive"))
    return Archived(dest, folder, report, recorder[0])


# --------------------------------------------------------------------------- what the archive holds


def test_jobs_table_holds_the_final_version_of_every_job(corpus: Corpus, archived: Archived) -> None:
    # GIVEN a corpus whose truths say which version of each job must win
    expected = corpus.summary.expected
    # WHEN the archive bucket is read back with DuckDB
    rows = read_rows(archived.folder, "jobs")
    # THEN there is exactly one row per job, and it is the final version, field by field
    assert_final_jobs(rows, expected)


def test_stream_type_of_every_job_is_the_corpus_truth(corpus: Corpus, archived: Archived) -> None:
    # GIVEN jobs in every envelope, each with the stream type its truth names
    expected = corpus.summary.expected
    # WHEN the jobs table is read
    got = Counter(
        (expected.finals[row["job_id"]].envelope, row["stream_type"])
        for row in read_rows(archived.folder, "jobs")
    )
    # THEN every job carries the stream type of its truth
    want = Counter((truth.envelope, truth.stream_type) for truth in expected.finals.values())
    assert got == want


def test_both_key_layouts_are_archived_with_lossless_ids(corpus: Corpus, archived: Archived) -> None:
    # GIVEN jobs under the standard layout (hyphenated ids) and the embedded-partner one (numeric ids
    # split into seven 3-digit folders)
    finals = corpus.summary.expected.finals
    by_layout = Counter(truth.layout for truth in finals.values())
    assert by_layout["standard"] > 0 and by_layout["embedded"] > 0
    # WHEN the jobs table is read
    rows = {row["job_id"]: row for row in read_rows(archived.folder, "jobs")}
    # THEN every job of both layouts is there under its exact id, as text
    for job_id, truth in finals.items():
        row = rows[job_id]
        if truth.layout == "embedded":
            assert job_id.isdigit() and not job_id.startswith("0")
            folders = row["source_key"].split("/")[4:-1]
            assert len(folders) == 7 and all(len(part) == 3 and part.isdigit() for part in folders)
            assert int("".join(folders)) == int(job_id)
        else:
            assert "-" in job_id
            assert row["source_key"].split("/")[4] == job_id


def test_job_lines_come_from_the_winning_object(corpus: Corpus, archived: Archived) -> None:
    expected = corpus.summary.expected
    jobs = {row["job_id"]: row for row in read_rows(archived.folder, "jobs")}
    lines = read_rows(archived.folder, "job_lines")
    assert len(lines) == expected.job_lines
    assert sum(1 for line in lines if line["masked"]) == expected.masked_lines
    assert sum(1 for line in lines if line["duration_s"] is not None) == expected.timed_lines
    per_job = Counter(line["job_id"] for line in lines)
    for job_id, truth in expected.finals.items():
        assert per_job.get(job_id, 0) == (truth.line_count or 0), job_id
    for line in lines:
        assert line["source_key"] == jobs[line["job_id"]]["source_key"]
        assert line["date"] == jobs[line["job_id"]]["date"]
    positions = Counter((line["job_id"], line["line_index"]) for line in lines)
    assert max(positions.values()) == 1


def test_activity_holds_every_event_once(corpus: Corpus, archived: Archived) -> None:
    # GIVEN the corpus' activity objects, one event each
    events = {key: truth for key, truth in corpus.truths.items() if truth.kind == KIND_ACTIVITY}
    assert len(events) == corpus.summary.expected.activity
    # WHEN the activity table is read
    activity = read_rows(archived.folder, "activity")
    # THEN each event is there once, from its object, on the UTC day it happened
    assert sorted(row["source_key"] for row in activity) == sorted(events)
    # Workato's id where the copy carries one (API records), never an invented one
    ids = [row["event_id"] for row in activity if row["event_id"] is not None]
    assert len(ids) == len(set(ids))
    assert all((row["event_id"] is not None) == (row["stream_type"] == "activity_api") for row in activity)
    for row in activity:
        truth = events[row["source_key"]]
        assert row["date"] == truth.day
        assert row["stream_type"] == truth.stream_type
        if truth.occurred_us is not None:
            assert int(row["occurred_at"].timestamp() * 1_000_000) == truth.occurred_us
        if truth.event is not None:
            assert row["event"] == truth.event
    assert Counter(row["date"] for row in activity) == Counter(corpus.summary.expected.activity_by_day)


def test_quarantine_names_every_unreadable_object_and_why(corpus: Corpus, archived: Archived) -> None:
    expected = corpus.summary.expected.quarantine
    quarantine = read_rows(archived.folder, "quarantine")
    assert len(quarantine) == len(expected)
    assert {row["source_key"]: row["reason"] for row in quarantine} == expected
    sizes = {key: (corpus.root / key).stat().st_size for key in expected}
    for row in quarantine:
        assert row["size"] == sizes[row["source_key"]]
        assert row["detail"] and row["source_etag"] is not None
    assert {path.split("/", 1)[0] for path in data_files(archived.folder)} == set(TABLES)


def test_report_accounts_for_every_object(corpus: Corpus, archived: Archived) -> None:
    summary, report = corpus.summary, archived.report
    assert_counts_add_up(report)
    assert report.objects_listed == summary.objects
    assert report.objects_skipped == summary.skipped
    assert report.objects_quarantined == summary.quarantined
    assert report.objects_failed == 0 and report.failures == []
    assert report.rows == {
        "jobs": summary.jobs,
        "job_lines": summary.job_lines,
        "activity": summary.activity_events,
    }
    # every JSON object was read exactly once from the source, and what was written is what is there
    json_bytes = sum(p.stat().st_size for p in corpus.root.rglob("*.json"))
    assert report.bytes_read == json_bytes
    assert report.requests["get"] >= summary.objects - summary.skipped
    assert report.files_written == len(data_files(archived.folder))
    assert set(report.requests) == {"list", "get", "put", "delete", "head"}


# --------------------------------------------------------------------------- exactly once


def test_rerun_reads_and_writes_nothing_and_leaves_the_same_archive(
    corpus: Corpus, archived: Archived, moto_endpoint: str
) -> None:
    # GIVEN the archive bucket built once
    before = bucket_state(moto_endpoint, archived.bucket)
    # WHEN compact runs again, once with the default lookback and once over every day of the corpus
    default = run(moto_endpoint, corpus.bucket, archived.bucket)
    everything = run(
        moto_endpoint,
        corpus.bucket,
        archived.bucket,
        Settings(since=START, until=START + dt.timedelta(days=DAYS)),
    )
    # THEN neither reads, writes nor deletes anything, and the bucket is exactly as it was
    for report in (default, everything):
        assert report.requests["get"] == 0
        assert report.requests["put"] == 0
        assert report.requests["delete"] == 0
        assert report.objects_archived == 0 and report.files_written == 0
        assert report.objects_skipped == report.objects_listed
        assert_counts_add_up(report)
    assert everything.objects_listed == corpus.summary.objects
    assert bucket_state(moto_endpoint, archived.bucket) == before  # same keys, same bytes (ETags)


def test_concurrency_does_not_change_the_archive(
    corpus: Corpus, archived: Archived, moto_endpoint: str, aws_env: str, tmp_path: Path
) -> None:
    # GIVEN the archive built with 64 GETs in flight
    dest = new_bucket(moto_endpoint)
    # WHEN the same source is archived with one GET at a time, the stores built from the standard
    # AWS configuration alone (AWS_ENDPOINT_URL)
    report = run(None, corpus.bucket, dest, Settings(concurrency=1))
    # THEN both archives hold the same rows
    assert_counts_add_up(report)
    assert report.rows == archived.report.rows
    assert all_rows(download(moto_endpoint, dest, tmp_path / "serial")) == all_rows(archived.folder)


# --------------------------------------------------------------------------- date pruning


def _layout_day(entry: str) -> dt.date | None:
    """The YYYYMMDD folder of a key or common prefix in the job layout, if it reaches that deep."""
    parts = entry.split("/")
    return parse_day(parts[3]) if len(parts) > 4 and parts[1] == "jobs" else None


def _day_requests(source: RecordingStore) -> int:
    """LIST requests (pages) for the contents of day folders: a day's prefix, or a span from a day on."""
    return sum(
        len(listing.pages)
        for listing in source.listed
        if _layout_day(listing.prefix) is not None or _layout_day(f"{listing.start_after}/") is not None
    )


def test_window_never_lists_day_folders_outside_it(
    corpus: Corpus, moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a window of three layout days in a corpus of twenty, listed by day folders
    since, until = WINDOW
    window_days = {since + dt.timedelta(days=n) for n in range((until - since).days + 1)}
    dest = new_bucket(moto_endpoint)
    recorder: list[RecordingStore] = []
    # WHEN compact runs with --since/--until
    settings = Settings(since=since, until=until, listing="folders")
    report = run(moto_endpoint, corpus.bucket, dest, settings, recorder=recorder)
    source = recorder[0]
    # THEN no listing is ever asked for a day folder outside the window ...
    for listing in source.listed:
        assert _layout_day(listing.prefix) in {None, *window_days}, f"listed outside: {listing.prefix}"
    # ... no answer holds anything from a day before it (listings start after it) ...
    answered = [entry for listing in source.listed for page in listing.pages for entry in page]
    early = [entry for entry in answered if (_layout_day(entry) or until) < since]
    assert not early, early[:3]
    # ... and a listing that meets a day after it stops at that page: never another page for it
    for listing in source.listed:
        for page in listing.pages[:-1]:
            late = [entry for entry in page if (_layout_day(entry) or since) > until]
            assert not late, f"{listing.prefix} went on listing after {late[0]}"
    # ... every object of the window's days was listed, and no object of another day was read
    keys = (str(path.relative_to(corpus.root)) for path in corpus.root.rglob("*") if path.is_file())
    in_window = {key for key in keys if _layout_day(key) in window_days}
    assert in_window and in_window <= set(answered)
    assert {_layout_day(key) for key in source.read} <= {None, *window_days}
    # ... and the flat plan lists the same window in fewer requests, reading the same objects
    flat = run(moto_endpoint, corpus.bucket, new_bucket(moto_endpoint), replace(settings, listing="flat"))
    assert _day_requests(source) > 0 and flat.listing == {"flat": report.listing["folders"]}
    assert flat.by_store["source"]["list"] < report.by_store["source"]["list"]
    assert flat.by_store["source"]["get"] == report.by_store["source"]["get"]
    # ... and the archive holds exactly the window's jobs
    assert_counts_add_up(report)
    folder = download(moto_endpoint, dest, tmp_path / "window", tables=("jobs",))
    expected = {job for job, truth in corpus.summary.expected.finals.items() if truth.day in window_days}
    jobs = read_rows(folder, "jobs")
    assert len(jobs) == len(expected)
    assert {row["job_id"] for row in jobs} == expected
    assert {row["date"] for row in jobs} == window_days


# --------------------------------------------------------------------------- large objects


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Corpus:
    """A handful of objects and one job-history object of about 40 MB."""
    root = tmp_path_factory.mktemp("big-corpus")
    summary = write_corpus(root, jobs=2, seed=4, start=START, days=DAYS, big_objects=1)
    bucket = new_bucket(moto_endpoint)
    upload_tree(moto_endpoint, bucket, root)
    return Corpus(root, summary, bucket, {})


def _big(corpus: Corpus) -> tuple[str, int, Any]:
    path = max((p for p in corpus.root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    key = str(path.relative_to(corpus.root))
    info = parse_key(key)
    assert info is not None
    return key, path.stat().st_size, corpus.summary.expected.finals[info.job_id]


def test_a_40_mb_object_is_archived_whole(big_corpus: Corpus, moto_endpoint: str, tmp_path: Path) -> None:
    # GIVEN a source holding a ~40 MB job object among small ones
    key, size, truth = _big(big_corpus)
    assert size > 38_000_000
    dest = new_bucket(moto_endpoint)
    # WHEN it is archived over HTTP
    report = run(moto_endpoint, big_corpus.bucket, dest)
    # THEN its job and every one of its lines are in the archive
    assert_counts_add_up(report)
    assert report.objects_failed == 0 and report.objects_quarantined == big_corpus.summary.quarantined
    folder = download(moto_endpoint, dest, tmp_path / "big")
    jobs = {row["job_id"]: row for row in read_rows(folder, "jobs")}
    assert set(jobs) == set(big_corpus.summary.expected.finals)
    assert jobs[truth.job_id]["source_key"] == key
    assert jobs[truth.job_id]["line_count"] == truth.line_count
    lines = [line for line in read_rows(folder, "job_lines") if line["job_id"] == truth.job_id]
    assert sorted(line["line_index"] for line in lines) == list(range(truth.line_count))
    assert sum(len(line["output"]) for line in lines) > 30_000_000


def test_an_object_above_the_size_limit_is_quarantined_without_being_read(
    big_corpus: Corpus, moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a size limit far below the big object
    key, size, truth = _big(big_corpus)
    limit = 1_000_000
    dest = new_bucket(moto_endpoint)
    recorder: list[RecordingStore] = []
    # WHEN the source is archived
    report = run(moto_endpoint, big_corpus.bucket, dest, Settings(max_object_bytes=limit), recorder=recorder)
    source = recorder[0]
    # THEN the big object is quarantined as too_large and never fetched; everything else is read once
    assert key not in source.read
    readable = big_corpus.summary.objects - big_corpus.summary.skipped - 1
    assert source.counts.get == len(source.read) == readable
    assert source.counts.bytes_read < size
    assert_counts_add_up(report)
    assert report.objects_quarantined == big_corpus.summary.quarantined + 1
    folder = download(moto_endpoint, dest, tmp_path / "limited")
    quarantine = {row["source_key"]: row for row in read_rows(folder, "quarantine")}
    assert quarantine[key]["reason"] == "too_large"
    assert quarantine[key]["size"] == size
    assert str(limit) in quarantine[key]["detail"]
    assert truth.job_id not in {row["job_id"] for row in read_rows(folder, "jobs")}
    assert {
        k: row["reason"] for k, row in quarantine.items() if k != key
    } == big_corpus.summary.expected.quarantine
