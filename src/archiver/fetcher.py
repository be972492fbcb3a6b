"""Concurrent GETs with a bound on requests and on bytes in flight, results in listing order.

Listing order matters: all versions of a job sit in one folder, so they arrive
next to each other and can be resolved without holding the whole day in memory.
The byte bound keeps a handful of 40 MB objects from exhausting memory: an object
larger than the whole budget is fetched alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from archiver.errors import ArchiverError
from archiver.store import Fetched, ObjectInfo, ObjectStore


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The body of a listed object, or why it was not read: an error, or its size."""

    info: ObjectInfo
    fetched: Fetched | None = None
    error: ArchiverError | None = None
    oversized: bool = False


async def _read(store: ObjectStore, info: ObjectInfo) -> FetchResult:
    try:
        return FetchResult(info, await store.get(info.key))
    except ArchiverError as error:
        return FetchResult(info, error=error)


async def _oversized(info: ObjectInfo) -> FetchResult:
    return FetchResult(info, oversized=True)


async def fetch_in_order(
    store: ObjectStore,
    infos: Iterable[ObjectInfo],
    *,
    concurrency: int,
    max_bytes: int,
    max_object_bytes: int,
    sequential: bool = False,
) -> AsyncIterator[FetchResult]:
    """Yield every object's FetchResult in the order given.

    Objects larger than `max_object_bytes` are never read: they come back `oversized`.

    The caller must consume each result before the next is released from the
    byte budget; at most `concurrency` requests and `max_bytes` are in flight.
    `sequential` skips task scheduling for stores whose reads do not block (a
    local folder), where one task per file would cost more than the read.
    """
    if sequential:
        for info in infos:
            yield (
                FetchResult(info, oversized=True)
                if info.size > max_object_bytes
                else await _read(store, info)
            )
        return
    pending: deque[tuple[ObjectInfo, asyncio.Task[FetchResult]]] = deque()
    upcoming = iter(infos)
    next_info = next(upcoming, None)
    in_flight_bytes = 0
    try:
        while next_info is not None or pending:
            # Launch while both bounds allow; an oversized object goes alone.
            while (
                next_info is not None
                and len(pending) < concurrency
                and (not pending or in_flight_bytes + next_info.size <= max_bytes)
            ):
                if next_info.size > max_object_bytes:
                    pending.append((next_info, asyncio.create_task(_oversized(next_info))))
                else:
                    pending.append((next_info, asyncio.create_task(_read(store, next_info))))
                    in_flight_bytes += next_info.size
                next_info = next(upcoming, None)
            info, task = pending.popleft()
            result = await task
            if not result.oversized:
                in_flight_bytes -= info.size
            yield result
    finally:
        for _, task in pending:
            task.cancel()
