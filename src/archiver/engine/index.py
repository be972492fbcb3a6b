"""Reading a unit's source index: its segments merged, newest first; and when segments are merged.

This is the one way the archive's own bookkeeping is read: by the unit worker to
tell what is new, by routing to learn which folders a sealed unit keeps, and by
`verify` to prove what is archived. Readers go through `read_current`, so a head
whose files a rival's commit deleted under them is followed by the new one.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from archiver.engine.ledger import (
    Head,
    IndexEntry,
    Outcome,
    SegmentRef,
    decode_at,
    decode_head,
    decode_index,
    head_key,
)
from archiver.engine.units import folder_of
from archiver.errors import ArchiverError, NotFoundError
from archiver.storage.store import ObjectStore

SEGMENT_FANOUT = 4
"""A run of this many recent segments of one size tier is merged into one."""
READ_CONCURRENCY = 8
READ_ATTEMPTS = 8
"""Heads a reader goes through when the files of the one it read keep vanishing under it."""

JobKey = tuple[str, str]


@dataclass(slots=True)
class UnitIndex:
    """The entries of a unit by source key: for each key, the set its newest segment holds."""

    by_key: dict[str, list[IndexEntry]] = field(default_factory=dict)
    segments: dict[str, list[IndexEntry]] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.by_key

    def get(self, key: str) -> list[IndexEntry]:
        return self.by_key.get(key, [])

    def etag(self, key: str) -> str | None:
        entries = self.by_key.get(key)
        return entries[0].etag if entries else None

    def folders(self) -> frozenset[str]:
        return frozenset(folder_of(key) for key in self.by_key)

    def winners(self) -> dict[JobKey, IndexEntry]:
        return {
            job: entry
            for entries in self.by_key.values()
            for entry in entries
            if entry.outcome is Outcome.JOB and (job := entry.job) is not None
        }

    def versions(self) -> dict[JobKey, list[IndexEntry]]:
        found: dict[JobKey, list[IndexEntry]] = defaultdict(list)
        for entries in self.by_key.values():
            for entry in entries:
                if entry.job is not None:
                    found[entry.job].append(entry)
        return found

    def __len__(self) -> int:
        return len(self.by_key)


class Keyed(Protocol):
    key: str


K = TypeVar("K", bound=Keyed)
T = TypeVar("T")

log = logging.getLogger(__name__)


def merge_segments(segments: Sequence[list[K]]) -> dict[str, list[K]]:
    """Entries by key, oldest segment first in `segments`: the newest segment mentioning a key wins."""
    merged: dict[str, list[K]] = {}
    for entries in segments:
        grouped: dict[str, list[K]] = defaultdict(list)
        for entry in entries:
            grouped[entry.key].append(entry)
        merged.update(grouped)
    return merged


async def read_head(dest: ObjectStore, unit: str) -> tuple[Head | None, str | None]:
    """The unit's committed head and its ETag, or (None, None) if it has none."""
    key = head_key(unit)
    try:
        fetched = await dest.get(key)
    except NotFoundError:
        return None, None
    return decode_at(key, decode_head, fetched.body), fetched.etag


async def read_segments(dest: ObjectStore, head: Head, decode: Callable[[bytes], list[K]]) -> list[list[K]]:
    """Every segment the head names, decoded, in its order. A segment that is gone raises NotFoundError."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(segment: SegmentRef) -> list[K]:
        async with gate:
            return decode_at(segment.key, decode, (await dest.get(segment.key)).body)

    return list(await asyncio.gather(*(read(segment) for segment in head.segments)))


async def read_index(dest: ObjectStore, head: Head) -> UnitIndex:
    """Every segment of the head, merged. A segment that is gone raises NotFoundError."""
    loaded = await read_segments(dest, head, decode_index)
    segments = {segment.key: entries for segment, entries in zip(head.segments, loaded, strict=True)}
    return UnitIndex(by_key=merge_segments(loaded), segments=segments)


async def read_current(
    dest: ObjectStore, unit: str, head: Head, etag: str | None, read: Callable[[Head], Awaitable[T]]
) -> tuple[Head, str | None, T]:
    """`read(head)`, and the head it read: if a file the head names vanishes meanwhile, the head again.

    A commit deletes the segments it merged away (and, in time, the files it
    replaced) as soon as it has won, so a reader holding an older head can meet a
    file that is gone. That is no damage when the head has moved on: the reader
    reads the new head and starts over, up to READ_ATTEMPTS times. A file missing
    while its head is still the current one is: NotFoundError.
    """
    for _ in range(READ_ATTEMPTS):
        try:
            return head, etag, await read(head)
        except NotFoundError as error:
            current, current_etag = await read_head(dest, unit)
            if current is None or current_etag == etag:
                raise
            log.info("unit %s: %s; a rival committed, reading its new head", unit, error)
            head, etag = current, current_etag
    raise ArchiverError(
        f"unit {unit}: its ledger kept changing while it was read ({READ_ATTEMPTS} heads)", retryable=True
    )


async def read_unit_index(
    dest: ObjectStore, unit: str, head: Head, etag: str | None
) -> tuple[Head, str | None, UnitIndex]:
    """The unit's index and the head it was read from (the current one, if `head` went stale meanwhile)."""
    return await read_current(dest, unit, head, etag, lambda current: read_index(dest, current))


async def moved_heads(
    dest: ObjectStore, held: Mapping[str, tuple[Head, str | None]]
) -> dict[str, tuple[Head, str | None]]:
    """The units whose head is no longer the one held (unit -> (head, ETag) as held), with their new one."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(unit: str) -> tuple[Head | None, str | None]:
        async with gate:
            return await read_head(dest, unit)

    units = sorted(held)
    current = await asyncio.gather(*(read(unit) for unit in units))
    return {
        unit: (head, etag)
        for unit, (head, etag) in zip(units, current, strict=True)
        if head is not None and etag != held[unit][1]
    }


def tier(entries: int) -> int:
    return int(math.log(max(entries, 1), SEGMENT_FANOUT))


def segments_to_merge(segments: Sequence[SegmentRef]) -> list[SegmentRef]:
    """The newest run of segments to merge into one, or none.

    Only a contiguous run of the newest segments is ever merged, so "the newest
    segment mentioning a key wins" keeps its meaning. A run is merged once it holds
    SEGMENT_FANOUT segments no bigger than the newest one's size tier; when the
    merged segment would itself complete such a run with the segments before it,
    they are taken along (the merge cascades up the tiers, as in log-structured
    stores). So a unit keeps a few segments per size tier however many commits it
    had, and each entry is rewritten about log(n) times over the unit's life.
    """
    sizes = [segment.entries for segment in segments]
    start = len(sizes)  # the merge takes segments[start:]
    while True:
        # The segments before the merge, then what the merge would make of the rest (at most their sum).
        tail = sizes[:start] + ([sum(sizes[start:])] if start < len(sizes) else [])
        run = _newest_run(tail)
        if not run:
            break
        start = len(tail) - run
    return list(segments[start:])


def _newest_run(sizes: Sequence[int]) -> int:
    """How many of the newest sizes form a run to merge: SEGMENT_FANOUT or more within the newest's tier."""
    if len(sizes) < SEGMENT_FANOUT:
        return 0
    newest_tier = tier(sizes[-1])
    run = 0
    for size in reversed(sizes):
        if tier(size) > newest_tier:
            break
        run += 1
    return run if run >= SEGMENT_FANOUT else 0


def merged_entries(index: UnitIndex, run: Iterable[SegmentRef]) -> list[IndexEntry]:
    """The entries a merged segment replacing `run` must hold (newest wins within the run)."""
    return [
        entry
        for entries in merge_segments([index.segments[s.key] for s in run]).values()
        for entry in entries
    ]
