"""Parsing fetched objects: inline, or in a pool of worker processes so every core parses.

Parsing and normalising is the CPU-bound part of a run. The event loop keeps the
network busy while batches of bodies are parsed in other processes; results come
back in the order the bodies went in, so a job's versions still arrive together.
A body's bytes stay counted in the run's byte budget until it has been parsed.
Bodies held back for a batch go to the pool at once when a read waits for room,
so a budget smaller than a few batches slows parsing down but never stops it.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import select
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from archiver.engine.fetcher import ByteBudget, FetchResult
from archiver.formats.layout import KeyInfo, parse_key
from archiver.formats.normalize import read_object
from archiver.formats.policy import DEFAULT_POLICY, Policy
from archiver.formats.records import ParsedObject
from archiver.formats.redaction import redact_parsed

BATCH_OBJECTS = 64
"""Bodies sent to a worker process at once: enough to make the hop cheap, few enough to keep order moving."""
BATCH_BYTES = 4 * 1024 * 1024
POOL_MIN_OBJECTS = 256
"""Fewer objects than this are parsed inline: starting the pool would cost more than it saves."""

Item = tuple[bytes, str, str, KeyInfo | None]


def exit_with(parent_pid: int) -> None:
    """In a worker process: exit as soon as the run that started the pool is gone.

    A forkserver worker's parent is the fork server, which outlives a killed run (its
    children keep it alive), so a killed run would leave workers holding its pipes.
    """
    watcher = threading.Thread(target=_exit_when_gone, args=(parent_pid,), daemon=True)
    watcher.start()


def _exit_when_gone(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while _alive(pid):
            time.sleep(1.0)
    else:
        select.select([handle], [], [])
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_batch(items: list[Item], policy: Policy = DEFAULT_POLICY) -> list[ParsedObject]:
    """Runs in a worker process: rows leave it already under the run's redaction policy."""
    return [
        redact_parsed(policy, read_object(body, key=key, etag=etag, key_info=info))
        for body, key, etag, info in items
    ]


def _item(result: FetchResult) -> Item | None:
    fetched = result.fetched
    if fetched is None:
        return None
    return fetched.body, result.info.key, fetched.etag, parse_key(result.info.key)


class Parser:
    """Turns a stream of fetch results into (result, parsed object or None) in the same order."""

    def __init__(self, workers: int, policy: Policy = DEFAULT_POLICY) -> None:
        self.workers = workers
        self.policy = policy
        self._pool: Executor | None = None

    def _executor(self) -> Executor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=exit_with,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def discard_broken_pool(self) -> None:
        """After a worker died outright: kill the rest (on Python 3.11 they can be stuck on a lock
        the dead one held, and waiting for them would hang), so the next unit starts a fresh pool."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def parse(
        self, results: AsyncIterator[FetchResult], *, expected: int
    ) -> AsyncIterator[tuple[FetchResult, ParsedObject | None]]:
        if self.workers <= 1 or expected < POOL_MIN_OBJECTS:
            async for result in results:
                item = _item(result)
                try:
                    yield result, None if item is None else parse_batch([item], self.policy)[0]
                finally:
                    result.release()
            return
        async for pair in self._pooled(results):
            yield pair

    async def _pooled(
        self, results: AsyncIterator[FetchResult]
    ) -> AsyncIterator[tuple[FetchResult, ParsedObject | None]]:
        loop = asyncio.get_running_loop()
        pool = self._executor()
        in_flight: deque[tuple[list[FetchResult], asyncio.Future[list[ParsedObject]]]] = deque()
        batch: list[FetchResult] = []
        weight = 0

        def submit() -> None:
            nonlocal batch, weight
            if not batch:
                return
            items = [item for result in batch if (item := _item(result)) is not None]
            future = loop.run_in_executor(pool, parse_batch, items, self.policy)
            # Parsed bodies give their bytes back at once, not when the consumer gets to them: a
            # read that waits for room must never wait on this stream's consumer.
            future.add_done_callback(functools.partial(_release_all, batch))
            in_flight.append((batch, future))
            batch, weight = [], 0

        async def drain_one() -> AsyncIterator[tuple[FetchResult, ParsedObject | None]]:
            # The batch stays in `in_flight` until every result is handed over, so that if the
            # consumer stops halfway the cleanup below still releases the rest of it.
            done, future = in_flight[0]
            parsed = iter(await future)
            for result in done:
                try:
                    yield result, None if result.fetched is None else next(parsed)
                finally:
                    result.release()
            in_flight.popleft()

        budget: ByteBudget | None = None
        try:
            async for result in results:
                if budget is None and result.budget is not None:
                    budget = result.budget
                    budget.add_flusher(submit)
                batch.append(result)
                weight += result.info.size
                if len(batch) >= BATCH_OBJECTS or weight >= BATCH_BYTES:
                    submit()
                while len(in_flight) > self.workers:  # batches the flusher sent count too
                    async for pair in drain_one():
                        yield pair
            if batch:
                submit()
            while in_flight:
                async for pair in drain_one():
                    yield pair
        except BrokenProcessPool:
            self.discard_broken_pool()
            raise
        finally:
            if budget is not None:
                budget.remove_flusher(submit)
            for done, future in in_flight:
                future.cancel()
                for result in done:
                    result.release()
            for result in batch:
                result.release()


def _release_all(results: list[FetchResult], _: object) -> None:
    for result in results:
        result.release()
