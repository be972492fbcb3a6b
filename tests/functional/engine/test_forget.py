"""`archiver forget`: one person erased from an archive, from the archive alone, exactly once (even after a
crash mid-way), every other row left as it was; and erased rows never come back through later runs."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from archiver.config import Settings
from archiver.engine.api import (
    ForgetReport,
    activity_sink,
    compact,
    compact_urls,
    forget,
    forget_url,
    publish,
)
from archiver.errors import ConfigError
from archiver.formats.policy import DEFAULT_POLICY
from archiver.formats.records import ActivityEvent
from archiver.local.synth import write_corpus
from archiver.storage.localfs import LocalStore
from tests.functional.engine.buckets import committed_archive, committed_rows, differences, heads
from tests.functional.faults import CrashingStore, SimulatedCrash

KEY = b"forget key"
SETTINGS = Settings(
    concurrency=8, retire_grace_seconds=0, parse_workers=1, policy=replace(DEFAULT_POLICY, key=KEY)
)
ERASED = ("jobs", "job_lines", "activity")
LOG = "_archiver/erasures"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forget-corpus")
    write_corpus(root, jobs=150, seed=21, days=4, start=dt.date(2024, 8, 30))
    return root


def _compact(source: Path, dest: Path, settings: Settings = SETTINGS) -> None:
    report = asyncio.run(compact(LocalStore(source), LocalStore(dest), settings))
    assert not report.failures


@pytest.fixture(scope="module")
def written(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus archived (to be copied by each test)."""
    dest = tmp_path_factory.mktemp("written")
    _compact(source, dest)
    return dest


def _copy(folder: Path, target: Path) -> Path:
    return Path(shutil.copytree(folder, target))


def _forget(dest: Path, kind: str, value: str, **options: Any) -> ForgetReport:
    store = (
        LocalStore(dest)
        if "crash_at" not in options
        else CrashingStore(LocalStore(dest), options["crash_at"])
    )
    settings = options.get("settings", SETTINGS)
    return asyncio.run(forget(store, settings, kind, value, dry_run=options.get("dry_run", False)))  # type: ignore[arg-type]


def _rows(dest: Path) -> dict[str, list[dict[str, Any]]]:
    return {table: committed_rows(dest, table) for table in ERASED}


def _names(row: dict[str, Any], email: str) -> bool:
    return email in repr(row).lower()


def _an_email(archive: Path) -> str:
    """The address of a person with activity rows of their own who is also named in job payloads."""
    rows = _rows(archive)
    people = Counter(row["user_email"] for row in rows["activity"] if row["user_email"])
    named = {email: sum(1 for row in rows["job_lines"] if _names(row, email.lower())) for email in people}
    email = max(named, key=lambda e: (named[e], e))
    assert named[email] > 0
    return email


def _a_user_id(archive: Path) -> str:
    people = Counter(row["user_id"] for row in _rows(archive)["activity"] if row["user_id"])
    return max(people, key=lambda u: (people[u], u))


def test_forget_by_email_leaves_no_trace_in_live_rows_and_every_other_row_as_it_was(
    written: Path, tmp_path: Path
) -> None:
    # GIVEN an archive, and a person with activity rows of their own who is named in job payloads
    dest = _copy(written, tmp_path / "archive")
    email = _an_email(dest)
    before = _rows(dest)
    theirs = [row for row in before["activity"] if row["user_email"] == email]
    # WHEN they are forgotten by e-mail
    report = _forget(dest, "email", email.upper())
    # THEN no live row holds their address in any column, their activity rows are gone, every other
    # row is exactly as it was, and the report counts what changed per table and day
    after = _rows(dest)
    assert report.failures == [] and not report.dry_run
    for table in ERASED:
        assert not [row for row in after[table] if _names(row, email)], table
        untouched = [row for row in before[table] if not _names(row, email)]
        assert Counter(map(repr, untouched)) - Counter(map(repr, after[table])) == Counter(), table
    assert len(after["activity"]) == len(before["activity"]) - len(theirs)
    assert len(after["job_lines"]) == len(before["job_lines"])
    assert sum(report.removed["activity"].values()) == len(theirs)
    changed = {t: sum(1 for row in before[t] if _names(row, email)) for t in ERASED}
    assert sum(n for t in ERASED for n in report.masked.get(t, {}).values()) + len(theirs) == sum(
        changed.values()
    )
    # ... and the erasure log holds one completed record naming them only by a keyed hash
    (record_path,) = (dest / LOG).iterdir()
    record = orjson.loads(record_path.read_bytes())
    assert record["subject"] == report.subject and email not in record_path.read_text().lower()
    assert record["completed_at"] and record["removed"] == report.removed
    # WHEN it runs again; THEN nothing is left to change
    again = _forget(dest, "email", email)
    assert (again.units_changed, again.files_rewritten, again.failures) == (0, 0, [])


def test_forget_by_user_id_removes_their_events_and_their_id_from_the_ledger(
    written: Path, tmp_path: Path
) -> None:
    # GIVEN an archive and a person with activity rows
    dest = _copy(written, tmp_path / "archive")
    user_id = _a_user_id(dest)
    before = _rows(dest)
    # WHEN they are forgotten by user id
    report = _forget(dest, "user_id", user_id)
    # THEN none of their rows is left, every other activity row is, and no live ledger segment holds
    # their id in an event's identity
    after = _rows(dest)
    assert [row for row in after["activity"] if row["user_id"] == user_id] == []
    others = [row for row in before["activity"] if row["user_id"] != user_id]
    assert Counter(map(repr, after["activity"])) == Counter(map(repr, others))
    assert sum(report.removed["activity"].values()) == len(before["activity"]) - len(others)
    assert [f for f in _ledger_strings(dest) if f"\x1f{user_id}\x1f" in f] == []
    # WHEN it runs again; THEN nothing is left to change
    again = _forget(dest, "user_id", user_id)
    assert (again.units_changed, again.failures) == (0, [])


def _ledger_strings(dest: Path) -> list[str]:
    """Every string in the live index segments of every unit."""
    found: list[str] = []
    for head in heads(dest).values():
        for segment in head.segments:
            table = pq.read_table(dest / segment.key)
            for column in table.columns:
                for value in column.to_pylist():
                    values = value if isinstance(value, list) else [value]
                    found.extend(v for v in values if isinstance(v, str))
    return found


def test_erased_rows_never_come_back_through_later_runs(source: Path, written: Path, tmp_path: Path) -> None:
    # GIVEN a person forgotten from an archive
    dest = _copy(written, tmp_path / "archive")
    src = _copy(source, tmp_path / "source")
    email, user_id = _an_email(dest), _a_user_id(dest)
    _forget(dest, "email", email)
    _forget(dest, "user_id", user_id)
    erased = _rows(dest)
    gone = [
        row for row in _rows(written)["activity"] if row["user_email"] == email or row["user_id"] == user_id
    ]
    # WHEN every source object naming them changes (a late copy, a new job version) and is archived again,
    # and the activity API gives their events again
    changed = 0
    for path in src.rglob("*.json"):
        body = path.read_bytes()
        if email.encode() in body or user_id.encode() in body:
            path.write_bytes(body + b" ")
            changed += 1
    assert changed > 0
    _compact(src, dest)
    events = [ActivityEvent(row["occurred_at"].date(), _api_copy(row)) for row in gone]
    added = asyncio.run(_pull(dest, events))
    # THEN nothing of theirs is back, and every other row is as the erasure left it
    after = _rows(dest)
    assert added == 0
    for table in ERASED:
        assert not [row for row in after[table] if _names(row, email)], table
    assert [row for row in after["activity"] if row["user_id"] == user_id] == []
    assert _without_etags(after) == _without_etags(erased)


def _without_etags(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Counter[str]]:
    """Rows by table, their source objects' ETags (changed by the test itself) left out."""
    return {
        table: Counter(repr({k: v for k, v in row.items() if k != "source_etag"}) for row in found)
        for table, found in rows.items()
    }


def _api_copy(row: dict[str, Any]) -> dict[str, Any]:
    """An archived activity row as the API client hands it over (a better copy: it carries Workato's id)."""
    occurred = row["occurred_at"]
    return {
        **row,
        "occurred_at": int(occurred.timestamp() * 1_000_000),
        "event_id": "991",
        "source_key": "api:991",
    }


async def _pull(dest: Path, events: list[ActivityEvent]) -> int:
    sink = await activity_sink(LocalStore(dest), SETTINGS)
    try:
        return await sink.commit(events)
    finally:
        await sink.close()


def test_a_crash_mid_way_and_a_rerun_end_as_one_clean_forget(written: Path, tmp_path: Path) -> None:
    # GIVEN what one clean forget makes, and how many storage calls it takes
    email = _an_email(written)
    clean = _copy(written, tmp_path / "clean")
    counting = CrashingStore(LocalStore(clean))
    asyncio.run(forget(counting, SETTINGS, "email", email))  # type: ignore[arg-type]
    calls, want = len(counting.calls), committed_archive(clean)
    for crash_at in sorted({calls // 4, calls // 2, (3 * calls) // 4, calls - 2}):
        dest = _copy(written, tmp_path / f"crash-{crash_at}")
        # WHEN a forget dies before call N, and runs again
        with pytest.raises(SimulatedCrash):
            _forget(dest, "email", email, crash_at=crash_at)
        report = _forget(dest, "email", email)
        # THEN the archive is what one clean forget makes, the log holds one completed record,
        # and a third run finds nothing to do
        assert report.failures == [] and report.resumed
        assert differences(committed_archive(dest), want) == {}, crash_at
        (record,) = (dest / LOG).iterdir()
        assert orjson.loads(record.read_bytes())["completed_at"], crash_at
        assert _forget(dest, "email", email).files_rewritten == 0


def test_a_dry_run_changes_nothing_and_reports_what_a_run_would_change(written: Path, tmp_path: Path) -> None:
    # GIVEN an archive and a person in it
    dest = _copy(written, tmp_path / "archive")
    email = _an_email(dest)
    files = {path: path.read_bytes() for path in dest.rglob("*") if path.is_file()}
    # WHEN a dry run forgets them
    dry = _forget(dest, "email", email, dry_run=True)
    # THEN not a byte of the archive changed, and a real run then changes exactly what it reported
    assert {path: path.read_bytes() for path in dest.rglob("*") if path.is_file()} == files
    real = _forget(dest, "email", email)
    assert dry.dry_run and (dry.removed, dry.masked) == (real.removed, real.masked)
    assert dry.removed and (dry.units_changed, dry.files_rewritten) == (
        real.units_changed,
        real.files_rewritten,
    )


def test_forget_and_later_runs_need_the_key_the_erasures_were_made_with(
    source: Path, written: Path, tmp_path: Path
) -> None:
    # GIVEN an archive
    dest = _copy(written, tmp_path / "archive")
    email = _an_email(dest)
    # WHEN forget runs without a key; THEN it refuses, one line, and writes nothing
    with pytest.raises(ConfigError, match="ARCHIVER_POLICY_KEY"):
        _forget(dest, "email", email, settings=replace(SETTINGS, policy=DEFAULT_POLICY))
    assert not (dest / LOG).exists()
    # WHEN a person was forgotten, and a later run has no key or another one; THEN it refuses
    _forget(dest, "email", email)
    for policy in (DEFAULT_POLICY, replace(DEFAULT_POLICY, key=b"another key")):
        with pytest.raises(ConfigError, match="ARCHIVER_POLICY_KEY"):
            asyncio.run(compact(LocalStore(source), LocalStore(dest), replace(SETTINGS, policy=policy)))


def test_after_the_snapshot_retention_no_file_under_dest_holds_their_address(
    source: Path, tmp_path: Path
) -> None:
    # GIVEN an archive with Iceberg tables (a local DEST carries its catalog) and a short snapshot retention
    dest = tmp_path / "archive"
    dest.mkdir()
    settings = replace(SETTINGS, snapshot_retention_seconds=60)
    start = dt.datetime.now(dt.UTC)
    archived = asyncio.run(compact_urls(str(source), str(dest), settings, clock=lambda: start))
    assert archived.failures == [] and archived.publish
    email = _an_email(dest)
    # WHEN the person is forgotten (the rewrite published as a new snapshot) ...
    report = asyncio.run(forget_url(str(dest), settings, "email", email, clock=lambda: start))
    assert report.failures == [] and report.publish
    # THEN older snapshots can still read them (time travel), so their files are still there
    assert _files_naming(dest, email)
    # WHEN the retention has passed and the tables are published again
    later = start + dt.timedelta(minutes=5)
    asyncio.run(publish(str(dest), settings, clock=lambda: later))
    # THEN no file under DEST holds their address any more: data files read row by row, the rest byte by byte
    assert _files_naming(dest, email) == []
    assert not [row for table in ERASED for row in committed_rows(dest, table) if _names(row, email)]


def _files_naming(dest: Path, email: str) -> list[str]:
    found = []
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            text = repr(pq.read_table(path).to_pylist()).lower()
        else:
            text = path.read_bytes().decode("utf-8", "replace").lower()
        if email in text:
            found.append(str(path.relative_to(dest)))
    return found
