"""`archiver forget`: erase one person from a window of the archive, from the archive itself.

The request is recorded first in the erasure log (`erasures.py`) and its index, so from then on
every run that writes rows erases the person too. Then each unit of the window
(job days and activity days) is read back file by file; a file whose rows name the
person (`formats.erasure`) is rewritten without them, by the commit protocol
`redact` uses (`rewriting.UnitRewriter`: intent, uploads, one conditional head
write, the old files retired), so a reader never sees a half-erased unit. A unit's
index is rewritten whole, in one segment replacing the others, when it names the
person: an activity day drops the entries of the removed events, and a job day
hashes the user id in the event identities its activity objects gave. Files that
do not name the person are left exactly as they are.

Erasing twice changes nothing, so a crashed `forget` run again resumes the same
request (the log's record still open) and ends where one clean run ends; the record
is completed with what was changed, per table and day, once every unit is done.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.activity import ACTIVITY_ROOT
from archiver.engine.activity_copies import ActivityEntry, encode_entries
from archiver.engine.erasures import (
    Counts,
    ErasureRecord,
    add_counts,
    erasure_of,
    index_log,
    read_log,
    record_key,
)
from archiver.engine.identity import event_identity
from archiver.engine.index import read_index
from archiver.engine.ledger import FileRef, Head, IndexEntry
from archiver.engine.policies import current_policy
from archiver.engine.rewriting import UnitRewriter, units_in_window
from archiver.engine.writer import WrittenFile, read_day_partition
from archiver.errors import ArchiverError, ConfigError
from archiver.formats.erasure import ERASED_TABLES, Erasure, subject_of
from archiver.formats.masking import hash_text, is_hashed, key_id
from archiver.formats.policy import Policy
from archiver.formats.records import Row
from archiver.storage.store import ObjectStore

_SEPARATOR = "\x1f"
_USER_PART = 2
"""The user id's place in an event identity (`identity.event_identity`)."""


@dataclass(slots=True)
class ForgetReport:
    """What `forget` changed (or, with `dry_run`, would change), per table and day."""

    kind: str
    subject: str
    """The keyed hash of the identifier (what the erasure log holds)."""
    dry_run: bool = False
    erasure_log: str | None = None
    resumed: bool = False
    units_checked: int = 0
    units_changed: int = 0
    files_rewritten: int = 0
    files_written: int = 0
    removed: Counts = field(default_factory=dict)
    masked: Counts = field(default_factory=dict)
    commit_conflicts: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    window: dict[str, str | None] = field(default_factory=dict)
    publish: dict[str, object] | None = None
    """The Iceberg publish that followed, where the archive has tables (the rewrite's new snapshots)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "publish": self.publish,
            "kind": self.kind,
            "subject": self.subject,
            "dry_run": self.dry_run,
            "erasure_log": self.erasure_log,
            "resumed": self.resumed,
            "units_checked": self.units_checked,
            "units_changed": self.units_changed,
            "files_rewritten": self.files_rewritten,
            "files_written": self.files_written,
            "rows_removed": _sorted(self.removed),
            "rows_masked": _sorted(self.masked),
            "commit_conflicts": self.commit_conflicts,
            "failures": list(self.failures),
            "window": dict(self.window),
        }

    def count(self, removed: Counts, masked: Counts) -> None:
        add_counts(self.removed, removed)
        add_counts(self.masked, masked)


def _sorted(counts: Counts) -> Counts:
    return {table: dict(sorted(days.items())) for table, days in sorted(counts.items())}


async def forget_window(
    dest: ObjectStore, settings: Settings, kind: str, identifier: str, now: dt.datetime, *, dry_run: bool
) -> ForgetReport:
    """Erase the person `identifier` names from the settings' window (see the module docstring)."""
    policy = current_policy(settings)
    if not policy.key:
        raise ConfigError(
            "forget needs ARCHIVER_POLICY_KEY: identifiers are hashed with it, and the erasure log "
            "holds only their keyed hash"
        )
    subject = subject_of(kind, identifier, policy.key)
    window = {
        "since": settings.since.isoformat() if settings.since else None,
        "until": settings.until.isoformat() if settings.until else None,
    }
    log = await read_log(dest)
    erasure_of([record for _, record, _ in log], policy)  # the log's key must be this one
    key, record, etag = _request(log, policy, subject.digest, kind, window, now)
    report = ForgetReport(kind, subject.digest, dry_run, key, resumed=etag is not None, window=window)
    if not dry_run:
        if etag is None:
            etag = await dest.put(key, record.encode(), if_none_match=True)
        await index_log(dest)  # runs learn the request from the index: before any unit is erased
    await _erase_units(dest, settings, policy, record, now, report)
    if not dry_run:
        record.add(report.removed, report.masked)
        if not report.failures:
            record.completed_at = now.isoformat()
        await dest.put(key, record.encode(), if_match=etag)
    return report


def _request(
    log: list[tuple[str, ErasureRecord, str]],
    policy: Policy,
    digest: str,
    kind: str,
    window: dict[str, str | None],
    now: dt.datetime,
) -> tuple[str, ErasureRecord, str | None]:
    """The log's open record of this same request (a crashed run's), or a new one: (key, record, ETag)."""
    for key, record, etag in log:
        if record.completed_at is None and record.same_request(kind, digest, window):
            return key, record, etag
    since, until = window["since"], window["until"]
    record = ErasureRecord(
        kind=kind,
        subject=digest,
        key_id=key_id(policy.key),
        requested_at=now.isoformat(),
        since=dt.date.fromisoformat(since) if since else None,
        until=dt.date.fromisoformat(until) if until else now.date(),
        window=window,
    )
    return record_key(now, secrets.token_hex(4)), record, None


async def _erase_units(
    dest: ObjectStore,
    settings: Settings,
    policy: Policy,
    record: ErasureRecord,
    now: dt.datetime,
    report: ForgetReport,
) -> None:
    erasure = Erasure(policy.key, [record.as_subject()])
    workdir = Path(tempfile.mkdtemp(prefix="archiver-forget-"))
    try:
        eraser = _Eraser(dest, settings, policy, workdir, int(now.timestamp() * 1_000_000), erasure, report)
        await eraser.prepare()
        for unit in await units_in_window(dest, record.since, record.until):
            report.units_checked += 1
            try:
                await eraser.rewrite(unit)
            except (ArchiverError, OSError, ValueError) as error:  # one unit's failure is the report's
                message = str(error).splitlines()[0] if str(error) else type(error).__name__
                report.failures.append({"unit": unit, "error": message, "kind": type(error).__name__})
        report.commit_conflicts = eraser.conflicts
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Eraser(UnitRewriter):
    """Rewrites the files of a unit whose rows name the person, and its index when that names them."""

    def __init__(
        self,
        dest: ObjectStore,
        settings: Settings,
        policy: Policy,
        workdir: Path,
        now_us: int,
        erasure: Erasure,
        report: ForgetReport,
    ) -> None:
        super().__init__(dest, settings, policy, workdir, now_us)
        self.erasure = erasure
        self.scrubber = erasure.scrubber(None)
        self.report = report
        self.removed: Counts = {}
        self.masked: Counts = {}
        self.gone: dict[str, list[str | None]] = {}
        """Identities (and Workato ids) of the activity rows this attempt removes."""

    async def select(self, head: Head) -> list[FileRef]:
        self.removed, self.masked, self.gone = {}, {}, {}
        chosen: list[FileRef] = []
        for ref in head.files:
            day = read_day_partition(ref.key)
            if ref.table not in ERASED_TABLES or not self.erasure.scrubber(day):
                continue
            handle, name = tempfile.mkstemp(dir=self.workdir, suffix=".parquet")
            os.close(handle)
            path = self.local[ref.key] = Path(name)
            await self.dest.get_file(ref.key, path)
            if self._scan(ref, path, day):
                chosen.append(ref)
            else:
                path.unlink(missing_ok=True)
                del self.local[ref.key]
        self.index_changes = bool(chosen) or await self._index_names_them(head)
        if self.report.dry_run:
            if self.index_changes:
                self.committed(chosen, [])
            self.index_changes = False
            return []
        return chosen

    def _scan(self, ref: FileRef, path: Path, day: dt.date | None) -> bool:
        """Whether the file's rows name the person; counts what erasing them changes."""
        changed = False
        label = day.isoformat() if day else "undated"
        for batch in pq.ParquetFile(path).iter_batches(batch_size=self.settings.row_group_rows):
            _, gone, masked = self.erasure.erase_table(ref.table, pa.Table.from_batches([batch]), day)
            if gone or masked:
                changed = True
                _add(self.removed, ref.table, label, len(gone))
                _add(self.masked, ref.table, label, masked)
            for row in gone:
                self.gone.setdefault(_identity(row), []).append(row.get("event_id"))
        return changed

    async def _index_names_them(self, head: Head) -> bool:
        """Whether the unit's index holds the person's user id (in event identities)."""
        if not self.scrubber.ids:
            return False
        if head.unit.startswith(ACTIVITY_ROOT):
            return any(self._names(key) for key in await self.activity_entries(head))
        index = await read_index(self.dest, head)
        return any(
            self._names(event.partition("|")[2])
            for entries in index.by_key.values()
            for entry in entries
            for event in entry.events
        )

    def _names(self, identity: str) -> bool:
        if not self.scrubber.ids:
            return False
        parts = identity.split(_SEPARATOR)
        if len(parts) <= _USER_PART or not parts[_USER_PART] or is_hashed(parts[_USER_PART]):
            return False  # no user, or one already erased
        return self.scrubber.is_id(parts[_USER_PART])

    def transform(
        self, table: str, data: pa.Table, policies: tuple[str, ...]
    ) -> tuple[pa.Table, tuple[str, ...]]:
        return self.erasure.erase_table(table, data, None)[0], policies

    def committed(self, chosen: list[FileRef], uploads: list[WrittenFile]) -> None:
        report = self.report
        report.units_changed += 1
        report.files_rewritten += len(chosen)
        report.files_written += len(uploads)
        report.count(self.removed, self.masked)

    async def segment(self, head: Head, mapping: dict[str, list[str]]) -> tuple[bytes, int, list[str]]:
        """The unit's whole index in one segment, without the person, replacing every other segment."""
        replaced = [segment.key for segment in head.segments]
        if head.unit.startswith(ACTIVITY_ROOT):
            activity = self._activity_entries(await self.activity_entries(head), mapping)
            return encode_entries(activity), len(activity), replaced
        index = await read_index(self.dest, head)
        entries = [self._index_entry(entry, mapping) for group in index.by_key.values() for entry in group]
        return ledger.encode_index(entries), len(entries), replaced

    def _activity_entries(
        self, merged: dict[str, list[ActivityEntry]], mapping: dict[str, list[str]]
    ) -> list[ActivityEntry]:
        kept: list[ActivityEntry] = []
        for key, group in merged.items():
            gone = self.gone.get(key, [])
            for entry in group:
                if self._names(key) or any(entry.same_event(event_id) for event_id in gone):
                    continue
                if entry.file in mapping:
                    if not mapping[entry.file]:
                        continue
                    entry.file = mapping[entry.file][0]
                kept.append(entry)
        return kept

    def _index_entry(self, entry: IndexEntry, mapping: dict[str, list[str]]) -> IndexEntry:
        if any(key in mapping for key in entry.files):
            entry.files = tuple(dict.fromkeys(new for key in entry.files for new in mapping.get(key, [key])))
        if entry.events:
            entry.events = tuple(self._hashed_event(event) for event in entry.events)
        return entry

    def _hashed_event(self, event: str) -> str:
        day, _, identity = event.partition("|")
        if not self._names(identity):
            return event
        parts = identity.split(_SEPARATOR)
        parts[_USER_PART] = hash_text(self.erasure.key, parts[_USER_PART])
        return f"{day}|{_SEPARATOR.join(parts)}"


def _identity(row: Row) -> str:
    """An activity row's identity as the ledger records it (its time in microseconds)."""
    occurred = row.get("occurred_at")
    if isinstance(occurred, dt.datetime):
        row = {**row, "occurred_at": int(occurred.timestamp()) * 1_000_000}
    return event_identity(row)


def _add(counts: Counts, table: str, day: str, rows: int) -> None:
    if rows:
        add_counts(counts, {table: {day: rows}})
