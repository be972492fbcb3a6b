"""The activity ledger: one row per user-activity event, whichever way and however often it came.

The same event can reach the archive as a stream object (no Workato id), as a
record of the activity audit log API (with its id), or twice from the stream.
Copies are the same event when they agree on the event name, the timestamp to the
second, the user id and the resource type and id (and, when both carry one, on
Workato's id). Rows are owned by one ledger per event date
(`_archiver/units/activity=YYYY-MM-DD/`), with the same head, segments and commit
protocol as a unit, so a stream unit and `pull-activity` committing the same day
at once are arbitrated by one conditional write.

Which copy's row is kept does not depend on arrival order: an API copy beats a
stream copy (it carries the id), then the smaller source key wins. A better copy
replaces the row (copy-on-write of the file holding it), so a stream copy that
arrives days late, or an API pull after the stream, ends in the same row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import random
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.commit import Committer, Generation
from archiver.engine.compaction import Rewriter, rewrite
from archiver.engine.identity import event_identity
from archiver.engine.index import merge_segments, read_head, read_segments, segments_to_merge
from archiver.engine.ledger import FileRef, Head, LedgerFormatError, Retired, SegmentRef, split_retired
from archiver.engine.policies import current_policy
from archiver.engine.writer import BufferBudget, Compression, UnitWriter
from archiver.errors import ArchiverError, NotFoundError
from archiver.formats.records import ActivityEvent, Row
from archiver.storage.store import ObjectStore

ACTIVITY_ROOT = "activity="
API_SOURCE_PREFIX = "api:"
MAX_ATTEMPTS = 10

log = logging.getLogger(__name__)


def activity_unit(day: dt.date) -> str:
    return f"{ACTIVITY_ROOT}{day.isoformat()}"


def copy_rank(source_key: str | None) -> tuple[int, str]:
    """Lower wins: an API copy (it carries Workato's id), then the smaller source key."""
    key = source_key or ""
    return (0 if key.startswith(API_SOURCE_PREFIX) else 1, key)


@dataclass(slots=True)
class ActivityEntry:
    """One event the ledger holds: its identity, Workato's id, the copy kept, and its file."""

    key: str
    event_id: str | None
    source_key: str
    source_etag: str | None
    file: str

    def same_event(self, event_id: str | None) -> bool:
        return self.event_id is None or event_id is None or self.event_id == event_id


_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("event_id", pa.string()),
        ("source_key", pa.string()),
        ("source_etag", pa.string()),
        ("file", pa.string()),
    ]
)


def encode_entries(entries: Iterable[ActivityEntry], uploads: Iterable[str] = ()) -> bytes:
    """One activity segment, naming the data files its commit uploads."""
    ordered = sorted(entries, key=lambda e: (e.key, e.event_id or "", e.source_key))
    table = pa.Table.from_pydict(
        {name: [getattr(entry, name) for entry in ordered] for name in _SCHEMA.names}, schema=_SCHEMA
    )
    sink = io.BytesIO()
    pq.write_table(ledger.with_uploads(table, uploads), sink, compression="zstd")
    return sink.getvalue()


def decode_entries(data: bytes) -> list[ActivityEntry]:
    try:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        return [ActivityEntry(**row) for row in rows]
    except (pa.ArrowException, OSError, TypeError) as error:
        raise LedgerFormatError(f"malformed activity segment ({type(error).__name__})") from None


def activity_keep_mask(data: pa.Table, drop: set[tuple[str, object]]) -> pa.Array:
    """Rows to keep in an activity file: not an event (identity, id) that `drop` names."""
    rows = data.select(["event", "occurred_at", "user_id", "resource_type", "resource_id", "event_id"])
    keep = []
    for row in rows.to_pylist():
        occurred = row["occurred_at"]
        if isinstance(occurred, dt.datetime):
            row["occurred_at"] = int(occurred.timestamp()) * 1_000_000
        keep.append((event_identity(row), row["event_id"]) not in drop)
    return pa.array(keep, pa.bool_())


@dataclass(slots=True)
class _Change:
    """What one commit to a day's ledger does: rows to write, rows to drop, entries it touches."""

    rows: list[Row] = field(default_factory=list)
    drops: dict[str, set[tuple[str, object]]] = field(default_factory=lambda: defaultdict(set))
    touched: dict[str, list[ActivityEntry]] = field(default_factory=dict)


Withdrawn = Sequence[tuple[str, str]]
"""(source key, identity) of events a source object no longer holds (it was rewritten)."""


def plan_change(
    index: dict[str, list[ActivityEntry]], rows: Sequence[Row], new_file: str, withdrawn: Withdrawn = ()
) -> _Change:
    """Decide, copy by copy, whether it is a new event, a better copy of a held one, or nothing new.

    An event withdrawn by the object whose copy the archive shows leaves the table
    (unless the object's new content, among `rows`, still holds it).
    """
    change = _Change()
    for source_key, key in withdrawn:
        entries = change.touched.get(key) or list(index.get(key, []))
        gone = [entry for entry in entries if entry.source_key == source_key]
        for entry in gone:
            change.drops[entry.file].add((key, entry.event_id))
            entries.remove(entry)
        if gone:
            change.touched[key] = entries
    for row in sorted(rows, key=lambda r: copy_rank(r.get("source_key"))):
        key = event_identity(row)
        event_id = row.get("event_id")
        entries = change.touched.get(key) or list(index.get(key, []))
        held = next((entry for entry in entries if entry.same_event(event_id)), None)
        entry = ActivityEntry(
            key, event_id, str(row.get("source_key") or ""), row.get("source_etag"), new_file
        )
        if held is None:
            entries.append(entry)
        elif _better(row, held):
            change.drops[held.file].add((key, held.event_id))
            entry.event_id = event_id or held.event_id
            row = {**row, "event_id": entry.event_id}
            entries[entries.index(held)] = entry
        else:
            continue
        change.touched[key] = entries
        change.rows.append(row)
    return change


def _better(row: Row, held: ActivityEntry) -> bool:
    new_rank, held_rank = copy_rank(row.get("source_key")), copy_rank(held.source_key)
    if new_rank != held_rank:
        return new_rank < held_rank
    return (held.event_id is None and row.get("event_id") is not None) or row.get(
        "source_etag"
    ) != held.source_etag


class ActivityLedger:
    """Commits activity events into the per-day ledgers of one archive."""

    def __init__(self, dest: ObjectStore, settings: Settings, workdir: Path, buffers: BufferBudget) -> None:
        self.dest = dest
        self.settings = settings
        self.workdir = workdir
        self.buffers = buffers
        self.committer = Committer(dest)
        self.locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.conflicts = 0
        self.files_written = 0
        self.published_tables = False
        """Superseded files belong to the Iceberg publisher (see `publish.mode`); set by the owner."""

    async def commit(self, events: Sequence[ActivityEvent], now_us: int, withdrawn: Withdrawn = ()) -> int:
        """Archive the events; return how many rows are new (an event held before adds none).

        `withdrawn` names events, as (source key, `YYYY-MM-DD|identity`), that a rewritten
        source object gave before.
        """
        by_day: dict[dt.date, list[Row]] = defaultdict(list)
        gone: dict[dt.date, list[tuple[str, str]]] = defaultdict(list)
        for event in events:
            if not event.erased:  # a person the archive erased: never (again) a row
                by_day[event.day].append(event.row)
        for source_key, marker in withdrawn:
            day_text, _, identity = marker.partition("|")
            gone[dt.date.fromisoformat(day_text)].append((source_key, identity))
        added = 0
        for day in sorted(set(by_day) | set(gone)):
            async with self.locks[activity_unit(day)]:
                added += await self._commit_day(day, by_day[day], now_us, gone[day])
        return added

    async def _commit_day(self, day: dt.date, rows: list[Row], now_us: int, withdrawn: Withdrawn) -> int:
        unit = activity_unit(day)
        for attempt in range(MAX_ATTEMPTS):
            head, etag = await read_head(self.dest, unit)
            head = head or Head(unit=unit)
            try:
                index, segments = await self._index(head)
                generation, added = await self._stage(
                    head, etag, index, segments, rows, day, now_us, withdrawn
                )
            except NotFoundError:
                await self._backoff(attempt)
                continue
            if generation is None:
                return 0
            await self.committer.upload(generation)
            won, current, _ = await self.committer.publish(generation)
            if won:
                self.files_written += len(generation.uploads)
                await self.committer.finish(generation)
                await self._sweep(current or generation.head)
                return added
            await self.committer.discard(generation, current)
            await self._backoff(attempt)
        raise ArchiverError(f"activity ledger {unit}: gave up after {MAX_ATTEMPTS} conflicts", retryable=True)

    async def _backoff(self, attempt: int) -> None:
        self.conflicts += 1
        await asyncio.sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))

    async def _index(
        self, head: Head
    ) -> tuple[dict[str, list[ActivityEntry]], dict[str, list[ActivityEntry]]]:
        loaded = await read_segments(self.dest, head, decode_entries)
        segments = {segment.key: entries for segment, entries in zip(head.segments, loaded, strict=True)}
        merged = merge_segments(list(segments.values()))
        live = {key: [entry for entry in entries if entry.file] for key, entries in merged.items()}
        return {key: entries for key, entries in live.items() if entries}, segments

    async def _stage(
        self,
        head: Head,
        etag: str | None,
        index: dict[str, list[ActivityEntry]],
        segments: dict[str, list[ActivityEntry]],
        rows: list[Row],
        day: dt.date,
        now_us: int,
        withdrawn: Withdrawn,
    ) -> tuple[Generation | None, int]:
        token = secrets.token_hex(4)
        number = head.generation + 1
        writer = self._writer(head.unit, number, token)
        new_file = writer.add_rows("activity", day, [], 0)
        change = plan_change(index, rows, new_file, withdrawn)
        if not change.touched:
            writer.abandon()
            return None, 0
        writer.add_rows("activity", day, change.rows, 512 * len(change.rows))
        rewriter = Rewriter(
            self.dest,
            self._writer(head.unit, number, token + "m"),
            batch_rows=self.settings.row_group_rows,
            workdir=self.workdir,
            mask=activity_keep_mask,
        )
        rewritten = await rewrite(
            rewriter,
            head.files,
            writer.close(),
            change.drops,
            target_bytes=self.settings.target_file_bytes,
            fanout=self.settings.max_small_files,
        )
        entries = remapped_entries(index, change.touched, rewritten.mapping)
        segment_key = ledger.segment_key(head.unit, number, token)
        appended = [*head.segments, SegmentRef(segment_key, len(entries))]
        run = segments_to_merge(appended)
        dropped: list[str] = []
        if run:
            older = run[:-1]
            merged = merge_segments([*(segments[s.key] for s in older), entries])
            entries = [entry for group in merged.values() for entry in group]
            dropped = [segment.key for segment in older]
            appended = [s for s in head.segments if s not in older] + [SegmentRef(segment_key, len(entries))]
        kept = [ref for ref in head.files if ref.key not in rewritten.mapping]
        retired, expired = split_retired(
            head.retired + [Retired(key, now_us) for key in rewritten.replaced],
            now_us,
            self.settings.retire_grace_seconds * 1_000_000,
            published_tables=self.published_tables,
        )
        new_head = Head(
            unit=head.unit,
            generation=number,
            segments=appended,
            files=sorted(
                kept + [FileRef(f.key, f.table, f.rows, f.bytes, f.policies) for f in rewritten.uploads],
                key=_key,
            ),
            retired=retired,
            lineage=[*head.lineage, token][-ledger.LINEAGE :],
        )
        added = sum(max(0, len(group) - len(index.get(key, []))) for key, group in change.touched.items())
        generation = Generation(
            head=new_head,
            base_etag=etag,
            token=token,
            uploads=rewritten.uploads,
            segment_key=segment_key,
            segment_body=encode_entries(entries, [written.key for written in rewritten.uploads]),
            segment_lists_uploads=True,
            dropped_segments=dropped,
            expired=[item.key for item in expired],
        )
        return generation, added

    def _writer(self, unit: str, generation: int, token: str) -> UnitWriter:
        return UnitWriter(
            owner=ledger.file_owner(unit),
            generation=generation,
            token=token,
            workdir=self.workdir,
            target_bytes=self.settings.target_file_bytes,
            row_group_rows=self.settings.row_group_rows,
            compression=Compression.of(self.settings),
            budget=self.buffers,
            policy=current_policy(self.settings).digest,
        )

    async def _sweep(self, head: Head) -> None:
        """Leftovers of crashed attempts on this day's ledger: intents and stray segments (one LIST)."""
        keys: list[str] = []
        async for page in self.dest.list_pages(ledger.unit_prefix(head.unit)):
            keys.extend(info.key for info in page.objects)
        if keys:
            await self.committer.remove_leftovers(head, keys)


def _key(ref: FileRef) -> str:
    return ref.key


def remapped_entries(
    index: dict[str, list[ActivityEntry]],
    touched: dict[str, list[ActivityEntry]],
    mapping: dict[str, list[str]],
) -> list[ActivityEntry]:
    """Entries of every touched identity, and of identities whose file was rewritten (now its new file)."""
    result = dict(touched)
    if mapping:
        for key, entries in index.items():
            if key not in result and any(entry.file in mapping for entry in entries):
                result[key] = entries
        for entries in result.values():
            for entry in entries:
                if entry.file in mapping:
                    targets = mapping[entry.file]
                    entry.file = targets[0] if targets else ""
    # An identity left with no copy is written as a tombstone, so older segments stop counting.
    return [entry for key, entries in result.items() for entry in (entries or [_tombstone(key)])]


def _tombstone(key: str) -> ActivityEntry:
    return ActivityEntry(key, None, "", None, "")
