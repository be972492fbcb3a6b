"""Concurrent GETs with a bound on requests and on bytes in flight, results in listing order.

Listing order matters: all versions of a job sit in one folder, so they arrive
next to each other and can be resolved without holding the whole day in memory.
The byte budget is shared by every unit a run processes at once, so a handful of
40 MB objects cannot exhaust memory: an object larger than the whole budget is
fetched only when nothing else is in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from archiver.errors import ArchiverError
from archiver.storage.store import Fetched, ObjectInfo, ObjectStore


@dataclass(slots=True)
class FetchResult:
    """The body of a listed object, or why it was not read: an error, or its size.

    The body's bytes count against the run's byte budget until `release()` is
    called, which the consumer does once the body is parsed.
    """

    info: ObjectInfo
    fetched: Fetched | None = None
    error: ArchiverError | None = None
    oversized: bool = False
    budget: ByteBudget | None = None

    def release(self) -> None:
        if self.budget is not None:
            self.budget.release(self.info.size)
            self.budget = None


class ByteBudget:
    """Bytes of object bodies in flight across a whole run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._released = asyncio.Event()
        self._flushers: list[Callable[[], None]] = []

    def add_flusher(self, flush: Callable[[], None]) -> None:
        """Call `flush` whenever a read waits for room: a holder of bodies (a parse batch) lets them go."""
        self._flushers.append(flush)

    def remove_flusher(self, flush: Callable[[], None]) -> None:
        if flush in self._flushers:
            self._flushers.remove(flush)

    def try_acquire(self, amount: int) -> bool:
        if self.used == 0 or self.used + amount <= self.limit:
            self.used += amount
            return True
        return False

    async def acquire(self, amount: int) -> None:
        """Wait for room. Only call while holding nothing, so waiting cannot deadlock."""
        while not self.try_acquire(amount):
            self._released.clear()
            for flush in list(self._flushers):
                flush()
            await self._released.wait()

    def release(self, amount: int) -> None:
        if amount:
            self.used -= amount
            self._released.set()


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
    budget: ByteBudget,
    max_object_bytes: int,
    sequential: bool = False,
) -> AsyncIterator[FetchResult]:
    """Yield every object's FetchResult in the order given.

    At most `concurrency` requests of this stream and `budget` bytes of the whole
    run are in flight or being parsed: the consumer calls `release()` on each
    result once it has parsed it. Objects larger than `max_object_bytes` are
    never read: they come back `oversized`. `sequential` skips task scheduling for stores whose
    reads do not block (a local folder), where one task per file would cost more
    than the read itself.
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
    try:
        while next_info is not None or pending:
            while next_info is not None and len(pending) < concurrency:
                if next_info.size > max_object_bytes:
                    pending.append((next_info, asyncio.create_task(_oversized(next_info))))
                elif pending and not budget.try_acquire(next_info.size):
                    break
                else:
                    if not pending:
                        await budget.acquire(next_info.size)
                    pending.append((next_info, asyncio.create_task(_read(store, next_info))))
                next_info = next(upcoming, None)
            info, task = pending.popleft()
            try:
                result = await task
            except BaseException:
                if info.size <= max_object_bytes:
                    budget.release(info.size)  # it left `pending`, so the cleanup below misses it
                raise
            if not result.oversized:
                result.budget = budget  # the consumer releases it once parsed
            yield result
    finally:
        for info, task in pending:
            task.cancel()
            if info.size <= max_object_bytes:
                budget.release(info.size)
