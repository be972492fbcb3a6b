"""Reading a unit's source index: its segments merged, newest first; and when segments are merged.

This is the one way the archive's own bookkeeping is read: by the unit worker to
tell what is new, by routing to learn which folders a sealed unit keeps, and by
`verify` to prove what is archived.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from archiver.engine.ledger import Head, IndexEntry, Outcome, SegmentRef, decode_head, decode_index, head_key
from archiver.engine.units import folder_of
from archiver.errors import NotFoundError
from archiver.storage.store import ObjectStore

SEGMENT_FANOUT = 4
"""A run of this many recent segments of one size tier is merged into one."""
READ_CONCURRENCY = 8

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
    try:
        fetched = await dest.get(head_key(unit))
    except NotFoundError:
        return None, None
    return decode_head(fetched.body), fetched.etag


async def read_index(dest: ObjectStore, head: Head) -> UnitIndex:
    """Every segment of the head, merged. A segment that is gone raises NotFoundError."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(segment: SegmentRef) -> list[IndexEntry]:
        async with gate:
            return decode_index((await dest.get(segment.key)).body)

    loaded = await asyncio.gather(*(read(segment) for segment in head.segments))
    segments = {segment.key: entries for segment, entries in zip(head.segments, loaded, strict=True)}
    return UnitIndex(by_key=merge_segments(loaded), segments=segments)


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
