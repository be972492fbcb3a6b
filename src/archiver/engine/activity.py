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
arrives days late, or an API pull after the stream, ends in the same row. Every
copy is recorded (`activity_copies.py`), so a rewritten object withdraws its copy,
never an event another copy still holds; and a damaged data file is rebuilt from
the copies that can be read again (`repair`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.activity_copies import (
    ActivityEntry,
    Change,
    Withdrawn,
    copies_to_reread,
    decode_entries,
    edit_rows,
    encode_entries,
    live_copies,
    plan_change,
    plan_repair,
    tombstone,
)
from archiver.engine.commit import Committer, Generation
from archiver.engine.compaction import Rewriter, rewrite
from archiver.engine.index import merge_segments, read_head, read_segments, segments_to_merge
from archiver.engine.ledger import FileRef, Head, Retired, SegmentRef, split_retired
from archiver.engine.policies import current_policy
from archiver.engine.writer import BufferBudget, Compression, UnitWriter
from archiver.errors import ArchiverError, NotFoundError
from archiver.formats.records import ActivityEvent, Row
from archiver.storage.store import ObjectStore

ACTIVITY_ROOT = "activity="
MAX_ATTEMPTS = 10

log = logging.getLogger(__name__)

Index = dict[str, list[ActivityEntry]]
Planner = Callable[[Index, str], Awaitable[Change]]
"""Given the day's copies and the new file's key, what a commit does."""
Reread = Callable[[str], Awaitable[list[Row] | None]]
"""The activity rows a source object holds now, or None when it is gone."""


def activity_unit(day: dt.date) -> str:
    return f"{ACTIVITY_ROOT}{day.isoformat()}"


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
        self.published: dict[str, tuple[Head, str | None]] = {}
        """The head this ledger last committed to each day, and its ETag: known without a GET."""
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

            async def planned(index: Index, new_file: str, day: dt.date = day) -> Change:
                return plan_change(index, by_day[day], new_file, gone[day])

            change = await self._commit_day(day, now_us, planned)
            added += change.added() if change is not None else 0
        return added

    async def repair(self, day: dt.date, damaged: set[str], reread: Reread, now_us: int) -> list[str]:
        """Rebuild the day's rows that `damaged` files (deleted, or not as committed) held.

        Each event's row comes back from the best copy whose object still holds it; the
        damaged files leave the head and are deleted. Returns the copies of events no copy
        could give back (API copies, objects gone): those events are forgotten, so pulling
        or delivering them again archives them anew.
        """

        async def planned(index: Index, new_file: str) -> Change:
            rereads = {key: await reread(key) for key in copies_to_reread(index, damaged)}
            return plan_repair(index, damaged, rereads, new_file)

        change = await self._commit_day(day, now_us, planned, damaged)
        return change.lost if change is not None else []

    async def _commit_day(
        self, day: dt.date, now_us: int, planner: Planner, damaged: set[str] | None = None
    ) -> Change | None:
        """Plan and commit one change to the day's ledger, again from its new head after a lost race."""
        unit = activity_unit(day)
        async with self.locks[unit]:
            for attempt in range(MAX_ATTEMPTS):
                head, etag = await read_head(self.dest, unit)
                head = head or Head(unit=unit)
                missing = (damaged or set()) & head.file_keys()
                if damaged is not None and not missing:
                    return None
                try:
                    index, segments = await self._index(head)
                    staged = await self._stage(head, etag, index, segments, day, now_us, planner, missing)
                except NotFoundError:
                    await self._backoff(attempt)
                    continue
                if staged is None:
                    return None
                generation, change = staged
                await self.committer.upload(generation)
                won, current, current_etag = await self.committer.publish(generation)
                if won:
                    self.published[unit] = (current or generation.head, current_etag)
                    self.files_written += len(generation.uploads)
                    await self.committer.finish(generation)
                    await self._sweep(current or generation.head)
                    return change
                await self.committer.discard(generation, current)
                await self._backoff(attempt)
        raise ArchiverError(f"activity ledger {unit}: gave up after {MAX_ATTEMPTS} conflicts", retryable=True)

    async def _backoff(self, attempt: int) -> None:
        self.conflicts += 1
        await asyncio.sleep(random.uniform(0, min(5.0, 0.05 * 2**attempt)))

    async def _index(self, head: Head) -> tuple[Index, dict[str, list[ActivityEntry]]]:
        loaded = await read_segments(self.dest, head, decode_entries)
        segments = {segment.key: entries for segment, entries in zip(head.segments, loaded, strict=True)}
        return live_copies(merge_segments(list(segments.values()))), segments

    async def _stage(
        self,
        head: Head,
        etag: str | None,
        index: Index,
        segments: dict[str, list[ActivityEntry]],
        day: dt.date,
        now_us: int,
        planner: Planner,
        missing: set[str],
    ) -> tuple[Generation, Change] | None:
        token = secrets.token_hex(4)
        number = head.generation + 1
        writer = self._writer(head.unit, number, token)
        new_file = writer.add_rows("activity", day, [], 0)
        try:
            change = await planner(index, new_file)
        except BaseException:
            writer.abandon()
            raise
        if not change.touched and not missing:
            writer.abandon()
            return None
        writer.add_rows("activity", day, change.rows, 512 * len(change.rows))
        rewriter = Rewriter(
            self.dest,
            self._writer(head.unit, number, token + "m"),
            batch_rows=self.settings.row_group_rows,
            workdir=self.workdir,
            edit=edit_rows,
        )
        rewritten = await rewrite(
            rewriter,
            head.files,
            writer.close(),
            change.edits,
            target_bytes=self.settings.target_file_bytes,
            fanout=self.settings.max_small_files,
            missing=missing,
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
            discarded=sorted(missing),  # a damaged file still there (truncated, rewritten) goes too
        )
        return generation, change

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
    index: Index, touched: dict[str, list[ActivityEntry]], mapping: dict[str, list[str]]
) -> list[ActivityEntry]:
    """Copies of every touched identity, and of identities whose file was rewritten (now its new file)."""
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
    return [entry for key, entries in result.items() for entry in (entries or [tombstone(key)])]
