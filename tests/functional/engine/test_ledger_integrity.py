"""The ledger holes of issue 13: damaged data files, ledger files vanishing under readers, one-line errors.

Over a real moto server (or the command line in a subprocess, where the exit code is
part of the contract), with objects written by hand (`buckets.py`):

- a data file truncated, emptied or rewritten with rows removed is damage: `verify`
  names it (exit 5) and the next `compact` of its day rebuilds it;
- a reader (verify, plan, a `compact --unit`) that read a head whose segments a rival
  then merged away reads the new head and carries on;
- a malformed ledger file makes verify, plan and pull-activity exit with one line
  naming the unit and the file, never a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archiver.cli.main import main
from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import UnitScope, VerifyReport, compact, plan, verify
from archiver.storage.store import ObjectStore
from tests.functional.cli.test_cli import archiver_cli, cli_env, one_error_line, single_report
from tests.functional.engine.buckets import (
    SETTINGS,
    archive,
    assert_same_as_clean,
    bucket_keys,
    committed_rows,
    download,
    get_object,
    job_body,
    new_bucket,
    put_objects,
    run_compact_keys,
    s3_store,
    standard_key,
)
from tests.functional.faults import Call, CrashingStore
from tests.functional.sources.conftest import TOKEN
from tests.functional.sources.fake_workato import FakeWorkato, make_events, running_fake

DAY = "20240820"
ROOT = "day=2024-08-20"
SPLIT = replace(SETTINGS, unit_max_objects=4)
"""A day of more than four objects is sealed and split: enough for a sealed unit that still takes versions."""


def job_key(job: str, stamp: str = f"{DAY}100000") -> str:
    return standard_key("5234", "234", DAY, job, stamp, "succeeded")


def jobs(*names: str) -> dict[str, bytes]:
    return {job_key(name): job_body(name) for name in names}


def segments_of(endpoint: str, bucket: str, unit: str) -> list[str]:
    prefix = ledger.unit_prefix(unit) + ledger.SEGMENT_PREFIX
    return sorted(bucket_keys(endpoint, bucket, prefix))


def no_op(endpoint: str, source: str, dest: str, settings: Settings = SETTINGS) -> None:
    """A rerun over an unchanged source reads and writes nothing but LISTs."""
    report = archive(endpoint, source, dest, settings)
    assert report.failures == []
    assert (report.requests["get"], report.requests["put"], report.requests["delete"]) == (0, 0, 0)


# --------------------------------------------------------------------------- damaged data files


def truncated(body: bytes, path: Path) -> bytes:
    return body[: len(body) // 2]


def emptied(body: bytes, path: Path) -> bytes:
    return b""


def without_a_row(body: bytes, path: Path) -> bytes:
    """The same file rewritten as a valid Parquet file holding all its rows but the first."""
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows >= 2
    sink = io.BytesIO()
    pq.write_table(table.slice(1), sink, compression="zstd")
    return sink.getvalue()


DAMAGE = [
    pytest.param(truncated, id="truncated-to-half"),
    pytest.param(emptied, id="emptied"),
    pytest.param(without_a_row, id="rewritten-with-a-row-removed"),
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_data_file_is_named_by_verify_and_rebuilt_by_the_next_compact(
    damage: Callable[[bytes, Path], bytes], moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an archived day whose jobs file is damaged in place (same key, other content)
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    objects = jobs("j-0", "j-1", "j-2")
    put_objects(moto_endpoint, source, objects)
    assert archive(moto_endpoint, source, dest).failures == []
    (damaged,) = [key for key in bucket_keys(moto_endpoint, dest, "jobs/") if key.endswith(".parquet")]
    put_objects(moto_endpoint, dest, {damaged: damage(get_object(moto_endpoint, dest, damaged), tmp_path)})
    env = cli_env(moto_endpoint)
    # WHEN verify runs from the command line
    checked = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    # THEN it exits 5 with one line naming the file, and the report names it as damaged
    line = one_error_line(checked, 5, stdout=None)
    assert damaged in line
    verdict = single_report(checked)
    assert verdict["damaged_files"] == [damaged] and verdict["ok"] is False

    # WHEN compact runs again, the source unchanged
    report = archive(moto_endpoint, source, dest)
    # THEN the day's rows are rebuilt from the source, the damaged file is gone, and the archive is the
    # one a clean run makes
    assert report.failures == []
    assert report.missing_files == [damaged]
    assert damaged not in bucket_keys(moto_endpoint, dest)
    folder = download(moto_endpoint, dest, tmp_path / "repaired")
    assert sorted(row["source_key"] for row in committed_rows(folder, "jobs")) == sorted(objects)
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")
    # AND verify exits 0, and a rerun is a no-op
    again = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    assert again.returncode == 0, again.stderr
    no_op(moto_endpoint, source, dest)


def test_a_damaged_data_file_outside_the_lookback_is_rebuilt_when_a_window_names_its_day(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an old day archived, a newer day archived since, and the old day's jobs file truncated
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    old = jobs("j-0", "j-1")
    newer = {
        standard_key("5234", "234", "20241020", "j-9", "20241020100000", "succeeded"): job_body("j-9"),
    }
    put_objects(moto_endpoint, source, {**old, **newer})
    assert archive(moto_endpoint, source, dest).failures == []
    (damaged,) = [key for key in bucket_keys(moto_endpoint, dest, "jobs/date=2024-08-20/")]
    put_objects(moto_endpoint, dest, {damaged: truncated(get_object(moto_endpoint, dest, damaged), tmp_path)})
    # WHEN compact runs with a window naming the old day
    day = dt.date(2024, 8, 20)
    report = archive(moto_endpoint, source, dest, replace(SETTINGS, since=day, until=day))
    # THEN the file is rebuilt and the archive is the clean one
    assert report.failures == [] and report.missing_files == [damaged]
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")
    # AND the same window run again is a no-op
    no_op(moto_endpoint, source, dest, replace(SETTINGS, since=day, until=day))


# ------------------------------------------------------------------- ledger files vanishing under readers


def on_first_segment_read(
    unit: str, rival: Callable[[str], None]
) -> tuple[Callable[[Call], None], list[str]]:
    """A `before` hook: the first time the reader GETs a segment of `unit`, `rival` runs to completion."""
    prefix = ledger.unit_prefix(unit) + ledger.SEGMENT_PREFIX
    seen: list[str] = []

    def before(call: Call) -> None:
        if call.kind == "get" and call.key.startswith(prefix) and not seen:
            seen.append(call.key)
            rival(call.key)

    return before, seen


@dataclass(slots=True)
class Rival:
    """Late versions of `job` committed one at a time until the segment a reader is about to read is gone."""

    endpoint: str
    source: str
    dest: str
    job: str
    settings: Settings
    commits: int = 0

    def __call__(self, segment: str) -> None:
        """Runs in a thread of its own (the reader's event loop is paused inside a storage call)."""
        errors: list[BaseException] = []

        def commit_until_merged() -> None:
            try:
                self._commit_until_merged(segment)
            except BaseException as error:
                errors.append(error)

        thread = threading.Thread(target=commit_until_merged)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    def _commit_until_merged(self, segment: str) -> None:
        for attempt in range(1, 9):
            key = job_key(self.job, f"{DAY}{10 + attempt:02d}0000")
            put_objects(self.endpoint, self.source, {key: job_body(self.job, title=f"v{attempt}")})
            report = run_compact_keys(
                s3_store(self.source, self.endpoint), s3_store(self.dest, self.endpoint), [key], self.settings
            )
            assert report.failures == [], report.failures
            self.commits += 1
            if segment not in segments_of(self.endpoint, self.dest, segment.split("/")[2]):
                return
        raise AssertionError(f"{segment} was never merged away")


def in_commits(endpoint: str, source: str, dest: str, batches: list[list[str]], settings: Settings) -> None:
    """Each batch of jobs archived by its own commit, so the unit gets one segment per batch."""
    for batch in batches:
        put_objects(endpoint, source, jobs(*batch))
        assert archive(endpoint, source, dest, settings).failures == []


def sealed_day(endpoint: str) -> tuple[str, str]:
    """A day whose root unit is sealed holding the folders of j-0..j-2 (three segments), children the rest."""
    source, dest = new_bucket(endpoint), new_bucket(endpoint)
    in_commits(endpoint, source, dest, [["j-0"], ["j-1"], ["j-2"]], SPLIT)
    put_objects(endpoint, source, jobs(*(f"j-{n}" for n in range(3, 9))))
    assert archive(endpoint, source, dest, SPLIT).failures == []
    root = ledger.decode_head(get_object(endpoint, dest, ledger.head_key(ROOT)))
    assert root.sealed and len(root.segments) == 3
    return source, dest


Reader = Callable[[ObjectStore, ObjectStore], Awaitable[bool]]


def read_with(reader: Reader, source: ObjectStore, dest: ObjectStore) -> bool:
    async def main() -> bool:
        try:
            return await reader(source, dest)
        finally:
            await source.close()
            await dest.close()

    return asyncio.run(main())


async def verify_all(source: ObjectStore, dest: ObjectStore) -> bool:
    report = await verify(source, dest, SPLIT)
    return report.ok


async def plan_all(source: ObjectStore, dest: ObjectStore) -> bool:
    units = await plan(source, dest, SPLIT)
    return bool(units) and all(planned.unit.startswith(ROOT + ".") for planned in units)


async def compact_child(source: ObjectStore, dest: ObjectStore) -> bool:
    settings = replace(SPLIT, parse_workers=1)
    report = await compact(source, dest, settings, scope=UnitScope(unit=f"{ROOT}.1"))
    return report.failures == []


@pytest.mark.parametrize(
    "reader",
    [
        pytest.param(verify_all, id="verify"),
        pytest.param(plan_all, id="plan"),
        pytest.param(compact_child, id="compact-unit"),
    ],
)
def test_a_reader_whose_sealed_units_segments_are_merged_away_reads_the_new_head(
    reader: Reader, moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a split day whose sealed root has segments, and a reader that has read the root's head
    # when late versions of a job the root keeps commit, until the segment it reads next is merged away
    source, dest = sealed_day(moto_endpoint)
    rival = Rival(moto_endpoint, source, dest, "j-0", SPLIT)
    before, seen = on_first_segment_read(ROOT, rival)
    # WHEN the reader carries on
    ok = read_with(
        reader, s3_store(source, moto_endpoint), CrashingStore(s3_store(dest, moto_endpoint), before=before)
    )
    # THEN it read the new head and succeeded
    assert seen and rival.commits >= 1
    assert ok
    # AND the archive is the one a clean run makes, and a rerun after that is a no-op
    assert archive(moto_endpoint, source, dest, SPLIT).failures == []
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")
    no_op(moto_endpoint, source, dest, SPLIT)


def test_verify_while_key_batches_commit_to_the_unit_it_reads_reads_the_new_head(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a day archived in three commits (three segments), and verify reading the day's unit
    # while Lambda-style key batches commit late versions into it until its segments are merged
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    in_commits(moto_endpoint, source, dest, [["j-0"], ["j-1"], ["j-2"]], SETTINGS)
    assert len(segments_of(moto_endpoint, dest, ROOT)) == 3
    rival = Rival(moto_endpoint, source, dest, "j-1", SETTINGS)
    before, seen = on_first_segment_read(ROOT, rival)

    async def verify_day(source: ObjectStore, dest: ObjectStore) -> bool:
        report = await verify(source, dest, SETTINGS)
        return report.ok and report.objects_archived >= 3

    # WHEN verify carries on
    ok = read_with(
        verify_day,
        s3_store(source, moto_endpoint),
        CrashingStore(s3_store(dest, moto_endpoint), before=before),
    )
    # THEN it proves the archive complete, the rival's files included (no missing or orphan file)
    assert seen and rival.commits >= 1
    assert ok


def test_an_object_committed_after_verify_read_its_units_index_is_no_gap(moto_endpoint: str) -> None:
    # GIVEN a day of ten jobs (more than a listing page), and verify reading the day's index when
    # a Lambda-style key batch adds a job that sorts after the first page and commits it
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    in_commits(moto_endpoint, source, dest, [[f"j-{n}" for n in range(10)]], SETTINGS)
    late = job_key("j-99")

    def commit_late(segment: str) -> None:
        def run() -> None:
            put_objects(moto_endpoint, source, {late: job_body("j-99")})
            stores = s3_store(source, moto_endpoint), s3_store(dest, moto_endpoint)
            assert run_compact_keys(*stores, [late]).failures == []

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    before, seen = on_first_segment_read(ROOT, commit_late)
    checked: list[VerifyReport] = []

    async def verify_day(source: ObjectStore, dest: ObjectStore) -> bool:
        # listed by folders, page by page as it goes (a flat plan lists the day before any index)
        checked.append(await verify(source, dest, replace(SETTINGS, listing="folders")))
        return checked[0].ok

    # WHEN verify carries on and lists the new job
    ok = read_with(
        verify_day,
        s3_store(source, moto_endpoint),
        CrashingStore(s3_store(dest, moto_endpoint), before=before),
    )
    # THEN it finds the job in the unit's new index: no gap, eleven objects archived
    assert seen
    assert ok, checked[0].as_dict()
    assert checked[0].objects_archived == 11


# --------------------------------------------------------------------------- malformed ledger files


def head_of(unit: str) -> Callable[[str, str], str]:
    return lambda endpoint, dest: ledger.head_key(unit)


def first_segment_of(unit: str) -> Callable[[str, str], str]:
    return lambda endpoint, dest: segments_of(endpoint, dest, unit)[0]


def not_json(good: bytes) -> bytes:
    return good[: len(good) // 2]


def format_99(good: bytes) -> bytes:
    return json.dumps({**json.loads(good), "format": 99}).encode()


def empty_list(good: bytes) -> bytes:
    return b"[]"


MALFORMED = [
    pytest.param(head_of(ROOT), not_json, id="head-not-json"),
    pytest.param(head_of(ROOT), format_99, id="head-unknown-format"),
    pytest.param(head_of(ROOT), empty_list, id="head-empty-list"),
    pytest.param(first_segment_of(ROOT), not_json, id="segment-not-parquet"),
]


def break_file(
    endpoint: str, dest: str, which: Callable[[str, str], str], corrupt: Callable[[bytes], bytes]
) -> str:
    key = which(endpoint, dest)
    put_objects(endpoint, dest, {key: corrupt(get_object(endpoint, dest, key))})
    return key


@pytest.mark.parametrize(("which", "corrupt"), MALFORMED)
@pytest.mark.parametrize("command", ["verify", "plan"])
def test_a_malformed_ledger_file_makes_verify_and_plan_exit_4_with_one_line_naming_unit_and_file(
    command: str,
    which: Callable[[str, str], str],
    corrupt: Callable[[bytes], bytes],
    moto_endpoint: str,
) -> None:
    # GIVEN a split day (so plan reads the sealed root's segments too) with one ledger file of its root broken
    source, dest = sealed_day(moto_endpoint)
    broken = break_file(moto_endpoint, dest, which, corrupt)
    env = cli_env(moto_endpoint, ARCHIVER_UNIT_MAX_OBJECTS=str(SPLIT.unit_max_objects))
    # WHEN the command runs from the command line
    result = archiver_cli([command, f"s3://{source}/", f"s3://{dest}/"], env)
    # THEN it exits 4 with one line naming the unit and the file, no traceback
    line = one_error_line(result, 4, stdout=None)
    assert ROOT in line and broken in line, line


def test_verify_names_a_malformed_activity_ledger_head_and_still_checks_the_rest(moto_endpoint: str) -> None:
    # GIVEN an archived day and an activity ledger whose head is not JSON
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, jobs("j-0"))
    assert archive(moto_endpoint, source, dest).failures == []
    broken = ledger.head_key("activity=2024-08-20")
    put_objects(moto_endpoint, dest, {broken: b"{not json"})
    # WHEN verify runs with --json
    result = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    # THEN it exits 4 with one line naming the ledger and the file, and the report still counts the day
    line = one_error_line(result, 4, stdout=None)
    assert "activity=2024-08-20" in line and broken in line, line
    report = single_report(result)
    assert report["objects_archived"] == 1 and report["ok"] is False
    assert [(failure["unit"], failure["file"]) for failure in report["failures"]] == [  # type: ignore[union-attr]
        ("activity=2024-08-20", broken)
    ]


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkato]:
    monkeypatch.setenv("WORKATO_API_TOKEN", TOKEN)
    monkeypatch.setenv("ARCHIVER_API_REQUESTS_PER_MINUTE", "6000")
    monkeypatch.setenv("ARCHIVER_API_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("ARCHIVER_NO_PROGRESS", "1")
    now = dt.datetime.now(dt.UTC)
    events = make_events(40, start=now - dt.timedelta(hours=6), span=dt.timedelta(hours=4))
    with running_fake(FakeWorkato(token=TOKEN, events=events)) as running:
        yield running


@pytest.mark.parametrize("which", ["head", "segment"])
def test_a_malformed_activity_ledger_makes_pull_activity_exit_4_with_one_line_naming_it(
    which: str, fake_api: FakeWorkato, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN activity pulled into an archive, then one file of an activity ledger broken and the
    # checkpoint removed, so the next pull commits into that ledger again
    dest = tmp_path / "dest"
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date().isoformat()
    assert main(["pull-activity", str(dest), "--base-url", fake_api.url, "--since", since]) == 0
    ledgers = sorted((dest / ledger.LEDGER_ROOT).glob("activity=*"))
    assert ledgers
    names = [ledger.HEAD_NAME] if which == "head" else [p.name for p in ledgers[0].glob("index-*")]
    path = ledgers[0] / names[0]
    path.write_bytes(path.read_bytes()[:20])
    broken = path.relative_to(dest).as_posix()
    (dest / "_archiver" / "activity-api" / "checkpoint.json").unlink()
    capsys.readouterr()
    # WHEN pull-activity runs again
    code = main(["pull-activity", str(dest), "--base-url", fake_api.url, "--since", since])
    # THEN it exits 4 with one line naming the ledger and the file, no traceback
    err = capsys.readouterr().err
    assert code == 4, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert ledgers[0].name in err and broken in err, err


def test_the_unit_failure_line_of_compact_names_the_malformed_file(moto_endpoint: str) -> None:
    # GIVEN an archived day whose head is not JSON, and a new job in it
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, jobs("j-0"))
    assert archive(moto_endpoint, source, dest).failures == []
    put_objects(moto_endpoint, source, jobs("j-1"))
    broken = break_file(moto_endpoint, dest, head_of(ROOT), not_json)
    # WHEN compact runs from the command line
    result = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/"], cli_env(moto_endpoint))
    # THEN it exits 4 with one line naming the unit and the file
    line = one_error_line(result, 4, stdout=None)
    assert ROOT in line and broken in line, line
