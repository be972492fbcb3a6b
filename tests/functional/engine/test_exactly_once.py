"""Exactly once, checked against a clean run: crashes, kills, races, flaky S3, late and changed objects.

Every scenario ends by comparing its archive with the archive ONE clean run makes
of the same source (same rows in every table, file names ignored). Two views of an
archive are compared:

- the committed view: the rows of the data files the committed ledger heads name,
  with every named file present and one row per job;
- the reader's view: every `*.parquet` a user's DuckDB glob sees, which must be
  exactly the committed files (no orphans, no leftovers), with no temporary
  dot-file in the table folders either. A local store's hidden staging folder at
  the root is its own business, like `_archiver/`; a test checks it gets swept.

The source is a small synthetic corpus (`archiver.local.synth`), written as files for a
local folder or uploaded to a bucket on the moto server. The reference is always a
clean run over the very same files or bucket: rows carry `source_etag`, and a local
folder's ETags belong to its files (copies of a source folder are hard links, so
they keep them; a rewritten object is a new file).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from archiver.cli.main import EXIT_UNREAD, emit_report
from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import RunReport, compact
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket, upload_tree
from archiver.local.synth import KIND_ACTIVITY, KIND_JOB, KIND_QUARANTINE, SynthObject, generate
from archiver.storage.localfs import LocalStore
from archiver.storage.s3 import S3Store
from archiver.storage.store import ObjectStore
from tests.functional.engine.buckets import download
from tests.functional.faults import (
    LOST,
    SLOWDOWN,
    Call,
    CrashingStore,
    FaultProxy,
    Request,
    SimulatedCrash,
)
from tests.functional.readback import data_files, file_rows, read_rows

REPO = Path(__file__).resolve().parents[3]
START = dt.date(2024, 8, 30)
TABLES = ("jobs", "job_lines", "activity", "quarantine")
SETTINGS = Settings(concurrency=8, retire_grace_seconds=0)

Wrap = Callable[[ObjectStore], ObjectStore]


# --------------------------------------------------------------------------- corpus helpers


def corpus(jobs: int, days: int, seed: int) -> list[SynthObject]:
    return list(generate(jobs, seed=seed, start=START, days=days))


def put_body(root: Path, key: str, body: bytes) -> None:
    """Write an object into a source folder as a new file (a new version with a new ETag,
    whatever the local store derives ETags from), leaving hard-linked copies alone."""
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_bytes(body)


def write_objects(root: Path, objects: Iterable[SynthObject]) -> None:
    for obj in objects:
        put_body(root, obj.key, obj.body)


def link_tree(source: Path, target: Path) -> Path:
    """A copy of a source folder made of hard links: the same files, so the same ETags."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            link = target / path.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, link)
    target.mkdir(parents=True, exist_ok=True)
    return target


def source_folder(root: Path, objects: Iterable[SynthObject]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_objects(root, objects)
    return root


def delete_objects(root: Path, keys: Iterable[str]) -> None:
    for key in keys:
        root.joinpath(*key.split("/")).unlink()


def jobs_of(objects: Iterable[SynthObject]) -> dict[str, list[SynthObject]]:
    """Job objects by job id, in corpus (writing) order."""
    versions: dict[str, list[SynthObject]] = {}
    for obj in objects:
        if obj.truth.kind == KIND_JOB and obj.truth.job_id is not None:
            versions.setdefault(obj.truth.job_id, []).append(obj)
    return versions


def final_of(versions: list[SynthObject]) -> SynthObject:
    return next(obj for obj in versions if obj.truth.is_final)


def renamed(obj: SynthObject, seconds: int) -> str:
    """The key of the same job object written `seconds` later (a later STAMP in the file name)."""
    folder, name = obj.key.rsplit("/", 1)
    head, stamp, status = name[: -len(".json")].rsplit("-", 2)
    if len(stamp) == 8:
        stamp += "000000"
    moment = dt.datetime.strptime(stamp, "%Y%m%d%H%M%S") + dt.timedelta(seconds=seconds)
    return f"{folder}/{head}-{moment:%Y%m%d%H%M%S}-{status}.json"


# --------------------------------------------------------------------------- running


def local_run(
    source: Path,
    dest: Path,
    settings: Settings = SETTINGS,
    *,
    wrap_source: Wrap | None = None,
    wrap_dest: Wrap | None = None,
) -> RunReport:
    dest.mkdir(parents=True, exist_ok=True)
    src: ObjectStore = LocalStore(source)
    dst: ObjectStore = LocalStore(dest)
    if wrap_source is not None:
        src = wrap_source(src)
    if wrap_dest is not None:
        dst = wrap_dest(dst)
    return asyncio.run(compact(src, dst, settings))


class Counting:
    """A wrap that counts the calls a run makes on a store: `wrap_source=reads`, then `reads.calls`."""

    def __init__(self) -> None:
        self.store: CrashingStore | None = None

    def __call__(self, inner: ObjectStore) -> ObjectStore:
        self.store = CrashingStore(inner)
        return self.store

    @property
    def calls(self) -> list[Call]:
        assert self.store is not None, "the wrap was never used"
        return self.store.calls


def crashed_run(source: Path, dest: Path, settings: Settings = SETTINGS, **wraps: Wrap) -> bool:
    """Run until the wrapped store "dies"; True if it did (False: the run finished first)."""
    try:
        local_run(source, dest, settings, **wraps)
    except SimulatedCrash:
        return True
    return False


def clean_archive(source: Path, dest: Path, settings: Settings = SETTINGS) -> Path:
    report = local_run(source, dest, settings)
    assert report.objects_failed == 0
    return dest


def s3_store(bucket: str, endpoint: str, *, max_attempts: int = 8) -> S3Store:
    return S3Store(bucket, credentials=MOTO_CREDENTIALS, endpoint_url=endpoint, max_attempts=max_attempts)


def s3_run(source: ObjectStore, dest: ObjectStore, settings: Settings = SETTINGS) -> RunReport:
    async def main() -> RunReport:
        try:
            return await compact(source, dest, settings)
        finally:
            await source.close()
            await dest.close()

    return asyncio.run(main())


def new_bucket(endpoint: str) -> str:
    bucket = f"eo-{uuid.uuid4().hex[:16]}"
    create_bucket(endpoint, bucket)
    return bucket


# --------------------------------------------------------------------------- comparing archives


@dataclass(frozen=True, slots=True)
class Committed:
    """What the committed heads of an archive say it holds."""

    files: frozenset[str]
    indexes: frozenset[str]


def committed(root: Path) -> Committed:
    files: set[str] = set()
    indexes: set[str] = set()
    for head_path in sorted((root / ledger.LEDGER_ROOT).glob(f"*/{ledger.HEAD_NAME}")):
        head = ledger.decode_head(head_path.read_bytes())
        files |= head.file_keys()
        indexes |= head.ledger_keys()
    return Committed(frozenset(files), frozenset(indexes))


def table_rows(root: Path, table: str, keys: Iterable[str]) -> list[str]:
    """The rows of `table` in the given files, canonical (sorted items, repr), as a sorted list."""
    return sorted(
        repr(sorted(row.items()))
        for key in keys
        if key.split("/", 1)[0] == table
        for row in file_rows(root / key)
    )


def committed_rows(root: Path) -> dict[str, list[str]]:
    files = committed(root).files
    return {table: table_rows(root, table, files) for table in TABLES}


def visible_rows(root: Path) -> dict[str, list[str]]:
    """What a reader globbing `*.parquet` sees."""
    files = [key for key in data_files(root) if key.endswith(".parquet")]
    return {table: table_rows(root, table, files) for table in TABLES}


def job_ids(root: Path, keys: Iterable[str]) -> list[str]:
    return [row["job_id"] for key in sorted(keys) if key.startswith("jobs/") for row in file_rows(root / key)]


def duckdb_rows(root: Path, table: str) -> list[dict[str, Any]]:
    """A table as a user reads it: DuckDB over every Parquet file of the table's folder."""
    return read_rows(root, table)


def differences(got: dict[str, list[str]], want: dict[str, list[str]]) -> dict[str, str]:
    """Per table with a difference: how many rows are missing and how many are extra (or twice)."""
    out: dict[str, str] = {}
    for table in TABLES:
        have, need = Counter(got[table]), Counter(want[table])
        if have != need:
            out[table] = f"{sum((need - have).values())} missing, {sum((have - need).values())} extra"
    return out


def assert_consistent(root: Path) -> None:
    """A state a reader may see at any moment: the heads name files that exist, hold one row
    per job, and every Parquet file in sight is complete (its footer reads)."""
    state = committed(root)
    present = set(data_files(root)) | {
        str(path.relative_to(root)) for path in (root / "_archiver").rglob("*") if path.is_file()
    }
    assert not (state.files | state.indexes) - present, "the heads name files that do not exist"
    ids = job_ids(root, state.files)
    assert len(ids) == len(set(ids)), "a job has more than one row"
    for key in data_files(root):
        if key.endswith(".parquet"):
            pq.read_metadata(root / key)


def assert_committed_like(root: Path, clean: Path) -> None:
    """A consistent archive whose committed heads hold exactly the clean run's rows."""
    assert_consistent(root)
    assert differences(committed_rows(root), committed_rows(clean)) == {}


def hidden(key: str) -> bool:
    """A dot-file, or a file in a dot-folder: what readers and listings skip."""
    return any(part.startswith(".") for part in key.split("/"))


def leftovers(root: Path) -> dict[str, list[str]]:
    """Files readers trip over: visible data files no head names (orphans), and temporary
    dot-files inside the table folders, where a reader's glob or a tool's walk meets them.
    The store's own hidden staging folder at the root is checked by `staged`."""
    state = committed(root)
    found: dict[str, list[str]] = {}
    orphans = sorted(key for key in data_files(root) if key not in state.files and not hidden(key))
    if orphans:
        found["orphans"] = orphans
    temporary = sorted(key for key in data_files(root) if hidden(key) and not key.startswith("."))
    if temporary:
        found["temporary"] = temporary
    return found


def staged(root: Path) -> list[str]:
    """Files in hidden folders at the root of an archive (a local store's staging area)."""
    return sorted(key for key in data_files(root) if key.startswith("."))


def assert_same_archive(root: Path, clean: Path) -> None:
    """Committed state like the clean run's, nothing else visible, and readers see the clean rows."""
    assert_committed_like(root, clean)
    assert leftovers(root) == {}
    assert differences(visible_rows(root), visible_rows(clean)) == {}


# --------------------------------------------------------------------------- crash at every call


@dataclass(slots=True)
class CrashOutcome:
    """What one crash-and-rerun left behind, compared with the clean archive."""

    call: str
    crashed: bool
    committed_diff: dict[str, str]
    missing: list[str]
    duplicate_jobs: int
    visible_diff: dict[str, str]
    leftovers: dict[str, list[str]]

    @property
    def committed_ok(self) -> bool:
        return not self.committed_diff and not self.missing and not self.duplicate_jobs

    @property
    def reader_ok(self) -> bool:
        return not self.visible_diff and not self.leftovers


class CleanRows:
    """The clean archive's rows, read once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.committed = committed_rows(root)
        self.visible = visible_rows(root)


def crash_outcome(dest: Path, clean: CleanRows, call: str, crashed: bool) -> CrashOutcome:
    state = committed(dest)
    present = set(data_files(dest)) | {
        str(path.relative_to(dest)) for path in (dest / "_archiver").rglob("*") if path.is_file()
    }
    ids = job_ids(dest, state.files)
    rows = committed_rows(dest)
    visible = {key for key in data_files(dest) if key.endswith(".parquet")}
    return CrashOutcome(
        call=call,
        crashed=crashed,
        committed_diff=differences(rows, clean.committed),
        missing=sorted((state.files | state.indexes) - present),
        duplicate_jobs=len(ids) - len(set(ids)),
        visible_diff=differences(rows if visible == state.files else visible_rows(dest), clean.visible),
        leftovers=leftovers(dest),
    )


@dataclass(slots=True)
class CrashSweep:
    """Outcomes of runs crashed before one storage call each, then run again cleanly."""

    outcomes: list[CrashOutcome]

    def kinds(self) -> set[str]:
        return {outcome.call.split(" ", 2)[1] for outcome in self.outcomes if outcome.crashed}

    def failures(self, check: Callable[[CrashOutcome], bool]) -> list[str]:
        return [f"{outcome.call}: {outcome}" for outcome in self.outcomes if not check(outcome)]


def probe_calls(base: Path, source: Path, work: Path, settings: Settings, side: str) -> list[Call]:
    """The calls a clean run from `base` makes on one side ("source" or "dest")."""
    probe = work / f"probe-{side}"
    shutil.copytree(base, probe)
    counter = Counting()
    local_run(source, probe, settings, **{f"wrap_{side}": counter})
    shutil.rmtree(probe)
    return counter.calls


def sweep(base: Path, source: Path, clean: Path, work: Path, settings: Settings) -> CrashSweep:
    """Crash before EVERY destination call in turn, and before a sample of source calls
    (the first, the first GET, every 9th and the last); each time rerun and compare."""
    clean_rows = CleanRows(clean)
    dest_calls = probe_calls(base, source, work, settings, "dest")
    source_calls = probe_calls(base, source, work, settings, "source")
    first_get = next(call.number for call in source_calls if call.kind == "get")
    sampled = sorted({0, first_get, len(source_calls) - 1, *range(1, len(source_calls), 9)})
    plan = [("dest", call) for call in dest_calls] + [("source", source_calls[n]) for n in sampled]
    outcomes: list[CrashOutcome] = []
    for side, call in plan:
        dest = work / f"crash-{side}-{call.number:03d}"
        shutil.copytree(base, dest)
        wrap: Wrap = lambda store, n=call.number: CrashingStore(store, n)  # noqa: E731
        crashed = crashed_run(source, dest, settings, **{f"wrap_{side}": wrap})
        local_run(source, dest, settings)
        outcomes.append(crash_outcome(dest, clean_rows, f"{side} {call.kind} {call.key}", crashed))
        shutil.rmtree(dest)
    return CrashSweep(outcomes)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny corpus (2 days, 20 jobs with versions) and its clean archive."""
    root = tmp_path_factory.mktemp("tiny")
    source = source_folder(root / "source", corpus(jobs=20, days=2, seed=3))
    return source, clean_archive(source, root / "clean")


@pytest.fixture(scope="module")
def fresh_sweep(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> CrashSweep:
    """A first run into an empty archive, crashed at every call."""
    source, clean = tiny
    work = tmp_path_factory.mktemp("fresh-sweep")
    empty = work / "empty"
    empty.mkdir()
    return sweep(empty, source, clean, work, SETTINGS)


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """An archive of yesterday's source, today's source, and the clean archive today's must equal.

    Today a job's final version and a new job arrive in an archived day, an archived
    object changes (new ETag), an archived activity object is expired from the source
    (its rows must stay), and every partition has more small files than allowed, so
    the incremental run rewrites and merges files as well as adding them.
    """
    root = tmp_path_factory.mktemp("incremental")
    objects = corpus(jobs=20, days=2, seed=3)
    by_job = jobs_of(objects)
    late_final = next(final_of(v) for v in by_job.values() if len(v) > 1)
    late_job = next(v[0] for v in by_job.values() if len(v) == 1 and v[0].truth.line_count)
    changed = next(final_of(v) for v in by_job.values() if len(v) > 1 and final_of(v) is not late_final)
    expired = next(obj for obj in objects if obj.truth.kind == KIND_ACTIVITY)
    held_back = {late_final.key, late_job.key}
    yesterday = source_folder(root / "yesterday", (o for o in objects if o.key not in held_back))
    base = clean_archive(yesterday, root / "base")
    today = link_tree(yesterday, root / "today")
    write_objects(today, [late_final, late_job])
    earlier = by_job[changed.truth.job_id or ""][0]
    put_body(today, changed.key, earlier.body)  # same key, new content: a new ETag
    # The reference keeps the expired object: the archive outlives its source.
    reference = link_tree(today, root / "reference")
    delete_objects(today, [expired.key])
    clean = clean_archive(reference, root / "clean", INCREMENTAL)
    return base, today, clean


INCREMENTAL = Settings(concurrency=8, max_small_files=1, retire_grace_seconds=0)


@pytest.fixture(scope="module")
def incremental_sweep(
    incremental: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> CrashSweep:
    """An incremental run that adds, replaces, rewrites and merges, crashed at every call."""
    base, today, clean = incremental
    return sweep(base, today, clean, tmp_path_factory.mktemp("incremental-sweep"), INCREMENTAL)


ALL_KINDS = {"list", "get", "put", "put_file", "delete"}
FIRST_RUN_KINDS = ALL_KINDS - {"delete"}
"""A first run deletes nothing: its segments name its uploads, so it writes no intent to delete."""


def test_a_first_run_crashed_before_any_storage_call_then_rerun_commits_the_clean_archive(
    fresh_sweep: CrashSweep,
) -> None:
    # GIVEN a first run into an empty archive, crashed before each of its storage calls in turn
    # WHEN each crashed archive is run again cleanly
    outcomes = fresh_sweep.outcomes
    # THEN every call kind was hit, and the committed heads always hold exactly the clean rows
    assert fresh_sweep.kinds() >= FIRST_RUN_KINDS
    assert all(outcome.crashed for outcome in outcomes)
    assert fresh_sweep.failures(lambda outcome: outcome.committed_ok) == []


def test_a_first_run_crashed_before_any_storage_call_then_rerun_leaves_nothing_for_readers(
    fresh_sweep: CrashSweep,
) -> None:
    # GIVEN the same crashed and rerun archives
    # WHEN a reader globs every Parquet file
    # THEN it sees exactly the clean rows: no orphan file, no temporary file
    assert fresh_sweep.failures(lambda outcome: outcome.reader_ok) == []


def test_an_incremental_run_crashed_before_any_storage_call_then_rerun_commits_the_clean_archive(
    incremental_sweep: CrashSweep,
) -> None:
    # GIVEN an archive, a source with late, changed and expired objects, and a run that
    # also rewrites and merges files, crashed before each storage call in turn
    outcomes = incremental_sweep.outcomes
    # WHEN each is run again cleanly
    # THEN the committed state equals one clean run's, whatever call the crash came before
    assert incremental_sweep.kinds() >= ALL_KINDS
    assert all(outcome.crashed for outcome in outcomes)
    assert incremental_sweep.failures(lambda outcome: outcome.committed_ok) == []


def test_an_incremental_run_crashed_before_any_storage_call_then_rerun_leaves_nothing_for_readers(
    incremental_sweep: CrashSweep,
) -> None:
    # GIVEN the same crashed and rerun archives
    # WHEN a reader globs every Parquet file
    # THEN it sees exactly the clean rows: no orphan file, no temporary file
    assert incremental_sweep.failures(lambda outcome: outcome.reader_ok) == []


# --------------------------------------------------------------------------- SIGKILL


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO), env.get("PYTHONPATH")]))
    env["ARCHIVER_NO_PROGRESS"] = "1"
    return env


def compact_process(source: Path, dest: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "archiver", "compact", str(source), str(dest)],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A corpus that takes the CLI a second or two, and its clean archive."""
    root = tmp_path_factory.mktemp("medium")
    source = source_folder(root / "source", corpus(jobs=400, days=5, seed=21))
    return source, clean_archive(source, root / "clean")


def test_runs_killed_at_random_moments_end_in_the_clean_archive(
    medium: tuple[Path, Path], tmp_path: Path
) -> None:
    # GIVEN how long one uninterrupted run of the command takes (the faster of two)
    source, clean = medium
    durations = []
    for attempt in range(2):
        started = time.monotonic()
        timed = compact_process(source, tmp_path / f"timed-{attempt}")
        _, errors = timed.communicate(timeout=120)
        assert timed.returncode == 0, errors.decode()
        durations.append(time.monotonic() - started)
    duration = min(durations)
    rng = random.Random(20240830)
    kills = 0
    for iteration in range(3):
        dest = tmp_path / f"killed-{iteration}"
        # WHEN runs are killed with SIGKILL after a random delay until one completes
        for _attempt in range(6):
            process = compact_process(source, dest)
            try:
                _, errors = process.communicate(timeout=rng.uniform(0.25, 0.9) * duration)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.communicate()
                kills += 1
                assert_consistent(dest)  # the old state or the new one, never half of one
                continue
            assert process.returncode == 0, errors.decode()
            break
        else:
            last = compact_process(source, dest)
            _, errors = last.communicate(timeout=120)
            assert last.returncode == 0, errors.decode()
        # THEN the committed archive is the clean one
        assert_committed_like(dest, clean)
    assert kills >= 3


def kill_inside_put_script(source: Path, dest: Path) -> str:
    """A run that dies (SIGKILL) inside the local store's first data-file put, after the
    temporary file is written and fsynced but before it is renamed into place."""
    return textwrap.dedent(
        f"""
        import asyncio, os, signal
        from archiver.storage import localfs
        from archiver.config import Settings
        from archiver.storage.localfs import LocalStore
        from archiver.engine.api import compact

        real_replace = os.replace

        def dying_replace(src, dst, *args, **kwargs):
            if str(dst).endswith(".parquet") and "_archiver" not in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *args, **kwargs)

        localfs.os.replace = dying_replace
        settings = Settings(retire_grace_seconds=0)
        asyncio.run(compact(LocalStore({str(source)!r}), LocalStore({str(dest)!r}), settings))
        """
    )


def test_a_run_killed_inside_a_local_write_leaves_no_temporary_file_behind(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    # GIVEN a run killed between writing a data file's temporary copy and renaming it
    source, clean = tiny
    dest = tmp_path / "dest"
    dest.mkdir()
    killed = subprocess.run(
        [sys.executable, "-c", kill_inside_put_script(source, dest)], env=cli_env(), timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    # WHEN the run is repeated
    local_run(source, dest)
    # THEN no temporary file sits among the data files, and readers see the clean rows
    assert_same_archive(dest, clean)
    # AND what the dead writer staged is swept by a later writing run once it is stale
    week_ago = time.time() - 7 * 86_400
    for key in staged(dest):
        os.utime(dest / key, (week_ago, week_ago))
    grown = link_tree(source, tmp_path / "grown")
    job = next(obj for obj in corpus(jobs=20, days=2, seed=3) if obj.truth.kind == KIND_JOB)
    put_body(grown, renamed(job, 5), job.body)
    assert local_run(grown, dest).objects_archived == 1
    assert staged(dest) == []
    assert_same_archive(dest, clean_archive(grown, tmp_path / "clean"))


# --------------------------------------------------------------------------- S3: races and faults


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[SynthObject]]:
    """A small corpus (4 days, 60 jobs with versions), its clean archive, and its objects."""
    root = tmp_path_factory.mktemp("small")
    objects = corpus(jobs=60, days=4, seed=7)
    source = source_folder(root / "source", objects)
    return source, clean_archive(source, root / "clean"), objects


@pytest.fixture(scope="module")
def s3_source(moto_endpoint: str, small: tuple[Path, Path, list[SynthObject]]) -> str:
    """A bucket holding the small corpus (never changed by the tests)."""
    bucket = new_bucket(moto_endpoint)
    upload_tree(moto_endpoint, bucket, small[0])
    return bucket


@pytest.fixture(scope="module")
def s3_clean(moto_endpoint: str, s3_source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clean run from the source bucket into a new bucket, downloaded into a folder."""
    dest = new_bucket(moto_endpoint)
    report = s3_run(s3_store(s3_source, moto_endpoint), s3_store(dest, moto_endpoint))
    assert report.objects_failed == 0
    return download(moto_endpoint, dest, tmp_path_factory.mktemp("s3-clean") / "archive")


ProxyFactory = Callable[..., FaultProxy]


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[ProxyFactory]:
    """Start fault-injecting proxies in front of the moto server; all stop at teardown."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> FaultProxy:
            return stack.enter_context(FaultProxy(moto_endpoint, **options))

        yield start


def test_two_concurrent_runs_over_overlapping_windows_end_in_the_clean_archive(
    moto_endpoint: str, s3_source: str, s3_clean: Path, tmp_path: Path
) -> None:
    # GIVEN one source bucket, one destination bucket, and two overlapping windows
    dest = new_bucket(moto_endpoint)
    windows = [
        (START, START + dt.timedelta(days=2)),
        (START + dt.timedelta(days=1), START + dt.timedelta(days=3)),
    ]
    reports: list[RunReport] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(windows))

    def worker(since: dt.date, until: dt.date) -> None:
        barrier.wait()
        try:
            reports.append(
                s3_run(
                    s3_store(s3_source, moto_endpoint),
                    s3_store(dest, moto_endpoint),
                    Settings(concurrency=8, retire_grace_seconds=0).with_window(since, until),
                )
            )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=window) for window in windows]
    # WHEN both run at the same time
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    # THEN both finish and the destination is the clean archive
    assert errors == []
    assert all(report.objects_failed == 0 for report in reports)
    assert_same_archive(download(moto_endpoint, dest, tmp_path / "dest"), s3_clean)


def test_two_runs_racing_on_every_unit_end_in_the_clean_archive(
    small: tuple[Path, Path, list[SynthObject]], tmp_path: Path
) -> None:
    # GIVEN a run that has read a unit's head and built its files, and pauses there
    # until a second, complete run has committed every unit
    source, clean, _ = small
    dest = tmp_path / "dest"
    dest.mkdir()
    rival_done: list[str] = []

    def before(call: Call) -> None:
        uploading = "/intent-" in call.key or "/index-" in call.key  # an attempt's first upload
        if call.kind == "put" and uploading and not rival_done:
            rival_done.append(call.key)
            rival = threading.Thread(target=local_run, args=(source, dest))
            rival.start()
            rival.join()

    # WHEN the paused run resumes and finishes
    report = local_run(source, dest, wrap_dest=lambda store: CrashingStore(store, before=before))
    # THEN it saw the conflict, and the archive is the clean one
    assert rival_done
    assert report.commit_conflicts >= 1
    assert report.objects_failed == 0
    assert_same_archive(dest, clean)


def test_a_run_that_loses_a_race_after_reading_the_head_retries_the_unit(
    incremental: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    # GIVEN an archive and a changed source; a run that reads a unit's head and then
    # waits while a rival run commits the same unit (and removes what it replaced)
    base, today, clean = incremental
    dest = tmp_path / "dest"
    shutil.copytree(base, dest)
    settings = INCREMENTAL
    rival_done: list[str] = []

    def before(call: Call) -> None:
        if call.kind == "get" and "/index-" in call.key and not rival_done:
            rival_done.append(call.key)
            rival = threading.Thread(target=local_run, args=(today, dest, settings))
            rival.start()
            rival.join()

    # WHEN the waiting run resumes
    report = local_run(today, dest, settings, wrap_dest=lambda store: CrashingStore(store, before=before))
    # THEN it retries the unit from the new head, and the archive is the clean one
    assert rival_done
    assert report.commit_conflicts >= 1
    assert report.objects_failed == 0
    assert_same_archive(dest, clean)


def test_throttling_errors_and_dropped_connections_are_retried(
    moto_endpoint: str, s3_source: str, s3_clean: Path, fault_proxy: ProxyFactory, tmp_path: Path
) -> None:
    # GIVEN source and destination behind a proxy that fails about 10% of requests with
    # 503 SlowDown, 500 InternalError, a reset connection or a body cut short
    dest = new_bucket(moto_endpoint)
    proxy = fault_proxy(rate=0.1, seed=5)
    # WHEN the archive is built through it
    report = s3_run(s3_store(s3_source, proxy.endpoint), s3_store(dest, proxy.endpoint))
    # THEN faults did happen, the run completed, and the archive is the clean one
    assert sum(proxy.log.faults.values()) >= 10, proxy.log
    assert len(proxy.log.faults) >= 3, proxy.log
    assert report.objects_failed == 0
    assert report.failures == []
    assert_same_archive(download(moto_endpoint, dest, tmp_path / "dest"), s3_clean)


def test_a_lost_answer_to_the_commit_does_not_lose_the_commit(
    moto_endpoint: str, s3_source: str, s3_clean: Path, fault_proxy: ProxyFactory, tmp_path: Path
) -> None:
    # GIVEN a proxy that lets the first conditional head write through to S3, then
    # resets the connection before the answer reaches the archiver
    dest = new_bucket(moto_endpoint)
    lost: list[str] = []

    def rule(request: Request) -> str | None:
        conditional = "if-none-match" in request.headers or "if-match" in request.headers
        if request.method == "PUT" and request.path.endswith(ledger.HEAD_NAME) and conditional and not lost:
            lost.append(request.path)
            return LOST
        return "pass"

    proxy = fault_proxy(rate=0.0, rule=rule)
    # WHEN the archive is built through it, and run once more
    first = s3_run(s3_store(s3_source, moto_endpoint), s3_store(dest, proxy.endpoint))
    second = s3_run(s3_store(s3_source, moto_endpoint), s3_store(dest, moto_endpoint))
    # THEN both runs complete, the commit stands and the archive is the clean one
    assert lost
    assert first.objects_failed == second.objects_failed == 0
    assert_same_archive(download(moto_endpoint, dest, tmp_path / "dest"), s3_clean)


def test_an_object_that_cannot_be_read_is_named_and_picked_up_by_the_next_run(
    moto_endpoint: str,
    s3_source: str,
    s3_clean: Path,
    small: tuple[Path, Path, list[SynthObject]],
    fault_proxy: ProxyFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN an object whose every read is throttled
    objects = small[2]
    victim = next(obj.key for obj in objects if obj.truth.kind == KIND_JOB and obj.truth.is_final)
    dest = new_bucket(moto_endpoint)

    def rule(request: Request) -> str | None:
        return SLOWDOWN if request.is_object_read and request.path.endswith(victim) else "pass"

    proxy = fault_proxy(rate=0.0, rule=rule)
    # WHEN a run reads the source through the proxy (with few retries, to stay fast)
    report = s3_run(s3_store(s3_source, proxy.endpoint, max_attempts=2), s3_store(dest, moto_endpoint))
    # THEN the run reports the object by name and ends non-zero
    assert report.objects_failed == 1
    assert [failure["key"] for failure in report.failures] == [victim]
    assert emit_report(report, as_json=True) == EXIT_UNREAD
    assert victim in capsys.readouterr().err
    # AND the next run reads it, and the archive is the clean one
    retry = s3_run(s3_store(s3_source, moto_endpoint), s3_store(dest, moto_endpoint))
    assert retry.objects_failed == 0
    assert retry.requests["get"] >= 1
    assert_same_archive(download(moto_endpoint, dest, tmp_path / "dest"), s3_clean)


# --------------------------------------------------------------------------- late, changed, duplicated


def test_a_late_version_and_a_new_job_in_an_archived_day_are_merged_into_it(
    small: tuple[Path, Path, list[SynthObject]], tmp_path: Path
) -> None:
    # GIVEN days 1-4 archived without a job's final version and without a whole job of day 2
    _, _, objects = small
    by_job = jobs_of(objects)
    day2 = START + dt.timedelta(days=1)
    late = next(
        final_of(v)
        for v in by_job.values()
        if len(v) > 1 and final_of(v).truth.line_count and v[0].truth.day == day2
    )
    newcomer = next(v[0] for v in by_job.values() if len(v) == 1 and v[0].truth.day == day2)
    source = source_folder(tmp_path / "source", (o for o in objects if o.key not in {late.key, newcomer.key}))
    dest = tmp_path / "dest"
    local_run(source, dest)
    assert newcomer.truth.job_id not in {row["job_id"] for row in duckdb_rows(dest, "jobs")}
    # WHEN they arrive in the archived day and the archiver runs again
    write_objects(source, [late, newcomer])
    reads = Counting()
    report = local_run(source, dest, wrap_source=reads)
    # THEN only the two new objects were read, and the day holds one row per job, the latest state
    assert sorted(call.key for call in reads.calls if call.kind == "get") == sorted([late.key, newcomer.key])
    assert report.objects_archived == 2
    jobs = duckdb_rows(dest, "jobs")
    assert len(jobs) == len({row["job_id"] for row in jobs}) == len(by_job)
    row = next(row for row in jobs if row["job_id"] == late.truth.job_id)
    assert (row["status"], row["source_key"], row["line_count"]) == (
        late.truth.status,
        late.key,
        late.truth.line_count,
    )
    lines = [line for line in duckdb_rows(dest, "job_lines") if line["job_id"] == late.truth.job_id]
    assert len(lines) == late.truth.line_count
    assert {line["source_key"] for line in lines} == {late.key}
    assert any(row["job_id"] == newcomer.truth.job_id for row in jobs)
    # AND it is the archive one clean run over the final source makes
    assert_same_archive(dest, clean_archive(source, tmp_path / "clean"))


def test_a_changed_object_replaces_what_its_previous_version_contributed(
    small: tuple[Path, Path, list[SynthObject]], tmp_path: Path
) -> None:
    # GIVEN an archive, then three archived objects rewritten under the same keys:
    # a job's final version now holding an earlier state, another job's final version
    # now unreadable (an earlier version must win again), and an activity object
    source0, _, objects = small
    source = link_tree(source0, tmp_path / "source")
    dest = tmp_path / "dest"
    local_run(source, dest)
    by_job = jobs_of(objects)
    multi = [v for v in by_job.values() if len(v) > 1]
    regressed, broken = final_of(multi[0]), final_of(multi[1])
    activity = next(obj for obj in objects if obj.truth.kind == KIND_ACTIVITY)
    other_activity = next(obj for obj in objects if obj.truth.kind == KIND_ACTIVITY and obj is not activity)
    changed = {regressed.key, broken.key, activity.key}
    old_versions = {
        (row["source_key"], row["source_etag"])
        for table in TABLES
        for row in duckdb_rows(dest, table)
        if row["source_key"] in changed
    }
    put_body(source, regressed.key, multi[0][0].body)
    put_body(source, broken.key, b'{"job": {"id": ')
    put_body(source, activity.key, other_activity.body)
    # WHEN the archiver runs again
    reads = Counting()
    report = local_run(source, dest, wrap_source=reads)
    # THEN it read the changed objects (and the versions that may win again), nothing else
    read = {call.key for call in reads.calls if call.kind == "get"}
    assert changed <= read <= changed | {obj.key for obj in multi[0] + multi[1]}
    assert report.objects_failed == 0
    # AND no row of a previous version is left, and no job has two rows
    rows = {table: duckdb_rows(dest, table) for table in TABLES}
    versions = {(row["source_key"], row["source_etag"]) for table in TABLES for row in rows[table]}
    assert not versions & old_versions
    ids = [row["job_id"] for row in rows["jobs"]]
    assert len(ids) == len(set(ids)) == len(by_job)
    broken_row = next(row for row in rows["jobs"] if row["job_id"] == broken.truth.job_id)
    assert broken_row["source_key"] in {obj.key for obj in multi[1] if obj is not broken}
    assert broken.key in {row["source_key"] for row in rows["quarantine"]}
    # AND the archive is the one a clean run over the changed source makes
    assert_same_archive(dest, clean_archive(source, tmp_path / "clean"))


def test_the_same_content_delivered_twice_gives_one_row_per_job(
    small: tuple[Path, Path, list[SynthObject]], tmp_path: Path
) -> None:
    # GIVEN a source where a job's final version also sits under a second key
    source0, _, objects = small
    source = link_tree(source0, tmp_path / "source")
    finals = [final_of(v) for v in jobs_of(objects).values()]
    first, second, third = finals[0], finals[5], finals[10]
    put_body(source, renamed(first, 1), first.body)
    dest = tmp_path / "dest"
    local_run(source, dest)
    # WHEN the same content arrives again, under the same key and under a new one
    put_body(source, second.key, second.body)
    put_body(source, renamed(third, 7), third.body)
    report = local_run(source, dest)
    # THEN every job still has exactly one row
    assert report.objects_failed == 0
    ids = [row["job_id"] for row in duckdb_rows(dest, "jobs")]
    assert len(ids) == len(set(ids)) == len(finals)
    assert_same_archive(dest, clean_archive(source, tmp_path / "clean"))


def test_rows_of_source_objects_expired_after_archiving_survive_later_runs_and_merges(
    small: tuple[Path, Path, list[SynthObject]], tmp_path: Path
) -> None:
    # GIVEN an archive of three quarters of the corpus, then some archived source objects
    # expired (two single-version jobs, an activity object, a quarantined object)
    _, _, objects = small
    later = objects[1::4]
    early = [obj for obj in objects if obj not in later]
    source = source_folder(tmp_path / "source", early)
    dest = tmp_path / "dest"
    local_run(source, dest)
    first_files = committed(dest).files
    by_job = jobs_of(objects)
    singles = [
        obj for obj in early if obj.truth.kind == KIND_JOB and len(by_job[obj.truth.job_id or ""]) == 1
    ]
    expired = [
        singles[0].key,
        singles[-1].key,
        next(obj.key for obj in early if obj.truth.kind == KIND_ACTIVITY),
        next(obj.key for obj in early if obj.truth.kind == KIND_QUARANTINE),
    ]
    stash = tmp_path / "stash"
    for key in expired:
        (stash / key).parent.mkdir(parents=True, exist_ok=True)
        os.link(source / key, stash / key)
    delete_objects(source, expired)
    # WHEN the rest arrives in three small runs that each merge the small files of what they touch
    for batch in (later[0::3], later[1::3], later[2::3]):
        write_objects(source, batch)
        report = local_run(source, dest, Settings(concurrency=8, max_small_files=1, retire_grace_seconds=0))
        assert report.objects_failed == 0
    # THEN the expired jobs' rows live in rewritten files now, every expired object's rows are
    # still there, and the archive equals a clean run over everything ever in the source
    holders: dict[str, set[str]] = {key: set() for key in expired}
    for file_key in committed(dest).files:
        for row in file_rows(dest / file_key):
            if row["source_key"] in holders:
                holders[row["source_key"]].add(file_key)
    assert all(holders.values()), holders
    assert not (holders[expired[0]] | holders[expired[1]]) & first_files
    everything = link_tree(source, tmp_path / "everything")
    link_tree(stash, everything)
    assert_same_archive(dest, clean_archive(everything, tmp_path / "clean"))


# --------------------------------------------------------------------------- no-op and compaction


def test_a_rerun_with_nothing_new_reads_and_writes_nothing(
    moto_endpoint: str,
    s3_source: str,
    s3_clean: Path,
    small: tuple[Path, Path, list[SynthObject]],
    tmp_path: Path,
) -> None:
    # GIVEN an archive of the source, on a folder and on S3
    source, clean, _ = small
    dest = new_bucket(moto_endpoint)
    s3_run(s3_store(s3_source, moto_endpoint), s3_store(dest, moto_endpoint))
    local_dest = tmp_path / "local"
    shutil.copytree(clean, local_dest)
    files_before = data_files(local_dest)
    # WHEN the archiver runs again over the unchanged source
    on_s3 = s3_run(s3_store(s3_source, moto_endpoint), s3_store(dest, moto_endpoint))
    on_disk = local_run(source, local_dest)
    # THEN it issues no GET and no PUT, and nothing changes
    for report in (on_s3, on_disk):
        assert report.requests["get"] == 0
        assert report.requests["put"] == 0
        assert report.requests["delete"] == 0
        assert report.objects_archived == 0
    assert data_files(local_dest) == files_before
    assert_same_archive(local_dest, clean)
    assert_same_archive(download(moto_endpoint, dest, tmp_path / "s3"), s3_clean)


def test_many_small_incremental_runs_keep_partitions_compact_and_exact(
    small: tuple[Path, Path, list[SynthObject]], tmp_path: Path
) -> None:
    # GIVEN a source that receives its objects in many small batches
    _, _, objects = small
    source = tmp_path / "source"
    source.mkdir()
    dest = tmp_path / "dest"
    settings = Settings(concurrency=8, max_small_files=2, retire_grace_seconds=0)
    batches = [objects[i::10] for i in range(10)]
    # WHEN the archiver runs after each batch
    for batch in batches:
        write_objects(source, batch)
        assert local_run(source, dest, settings).objects_failed == 0
    # THEN no partition holds more files than the small-file limit allows per unit writing to it
    per_partition = Counter(key.rsplit("/", 1)[0] for key in data_files(dest))
    owners = Counter(
        (key.rsplit("/", 1)[0], key.rsplit("/", 1)[1].split("-g", 1)[0]) for key in data_files(dest)
    )
    writers = Counter(partition for partition, _ in owners)
    assert len(batches) > settings.max_small_files
    assert max(owners.values()) <= settings.max_small_files, owners
    for partition, files in per_partition.items():
        assert files <= settings.max_small_files * writers[partition], (partition, per_partition)
    # AND the content is exactly what one clean run makes
    assert_same_archive(dest, clean_archive(source, tmp_path / "clean"))
