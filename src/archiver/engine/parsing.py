"""Parsing fetched objects: inline, or in worker processes so every core parses.

Parsing and normalising is the CPU-bound part of a run. The event loop keeps the
network busy while batches of bodies are parsed in other processes; results come
back in the order the bodies went in, so a job's versions still arrive together.
A body's bytes stay counted in the run's byte budget until it has been parsed.
Bodies held back for a batch go to the workers at once when a read waits for room,
so a budget smaller than a few batches slows parsing down but never stops it.

The workers are `children.ChildProcess`es (a fresh interpreter and one pipe each,
no semaphore or shared memory: see `children` for why), one batch at a time each.
A worker that cannot start stops the run with one WorkerStartError; a worker killed
outright fails the unit it was parsing, and the next unit gets fresh workers.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import AsyncIterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from archiver.engine.children import ChildProcess, all_ready, receive, start_child
from archiver.engine.fetcher import ByteBudget, FetchResult
from archiver.errors import ArchiverError, WorkerProcessDiedError
from archiver.formats.layout import KeyInfo, parse_key
from archiver.formats.normalize import read_object
from archiver.formats.policy import DEFAULT_POLICY, Policy
from archiver.formats.records import ParsedObject
from archiver.formats.redaction import redact_parsed

BATCH_OBJECTS = 64
"""Bodies sent to a worker process at once: enough to make the hop cheap, few enough to keep order moving."""
BATCH_BYTES = 4 * 1024 * 1024
POOL_MIN_OBJECTS = 256
"""Fewer objects than this are parsed inline: starting the workers would cost more than it saves."""

Item = tuple[bytes, str, str, KeyInfo | None]
_T = TypeVar("_T")


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


def parse_forever(pipe: Connection) -> None:
    """A parse worker (in its own process): parse each batch the parent sends (with the redaction
    policy its rows must leave under), until it closes the pipe."""
    while True:
        try:
            items, policy = pipe.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, object] = ("parsed", parse_batch(items, policy))
        except Exception as error:  # read_object quarantines bad input; this is a bug, reported per batch
            answer = ("error", f"{type(error).__name__}: {error}")
        try:
            pipe.send(answer)
        except OSError:
            return


class _Worker:
    """A parse worker and the answers it owes to batches whose caller went away (read before reuse)."""

    def __init__(self, child: ChildProcess) -> None:
        self.child = child
        self.owed = 0

    async def parse(self, items: list[Item], policy: Policy) -> list[ParsedObject]:
        pipe = self.child.pipe
        while self.owed:
            await receive(pipe)
            self.owed -= 1
        pipe.send((items, policy))  # the worker is waiting for it, so this does not block
        self.owed += 1
        kind, value = await receive(pipe)
        self.owed -= 1
        if kind != "parsed":
            raise ArchiverError(f"parse worker: {value}")
        parsed: list[ParsedObject] = value
        return parsed


class _Pool:
    """Parse workers, each parsing one batch at a time; a batch waits for the first idle one.

    Every task reading a worker's pipe is tracked, so closing cancels and awaits them
    before the pipes close: no reader is left on a closed file descriptor.
    """

    def __init__(self, count: int) -> None:
        self.workers: list[_Worker] = []
        try:
            for _ in range(count):
                self.workers.append(_Worker(start_child(parse_forever, what=f"{count} parse workers")))
        except BaseException:
            self._close_all(kill=True)
            raise
        self.tasks: set[asyncio.Future[Any]] = set()
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        for worker in self.workers:
            self._idle.put_nowait(worker)
        self.ready = self._track(asyncio.ensure_future(all_ready([worker.child for worker in self.workers])))

    def _track(self, future: asyncio.Future[_T]) -> asyncio.Future[_T]:
        self.tasks.add(future)
        future.add_done_callback(self.tasks.discard)
        future.add_done_callback(_retrieve)  # whoever awaits it raises its error; nobody else should log it
        return future

    def submit(self, items: list[Item], policy: Policy) -> asyncio.Future[list[ParsedObject]]:
        return self._track(asyncio.ensure_future(self._parse(items, policy)))

    async def _parse(self, items: list[Item], policy: Policy) -> list[ParsedObject]:
        worker = await self._idle.get()
        try:
            return await worker.parse(items, policy)
        except (EOFError, OSError):
            how = await asyncio.to_thread(worker.child.ending)
            raise WorkerProcessDiedError(f"a parse worker process died ({how}) while parsing") from None
        finally:
            self._idle.put_nowait(worker)

    async def close(self, *, kill: bool) -> None:
        """Stop every worker (at once if `kill`, else once it finishes its batch) and release its pipe."""
        if kill:
            # Every read still pending then ends (EOF), so each unit waiting on one fails on its own
            # with WorkerProcessDiedError; cancelling them would cancel those units instead.
            for worker in self.workers:
                worker.child.kill()
        else:
            for task in self.tasks:  # at the end of a run: answers whose unit went away
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.to_thread(self._close_all, kill=kill)

    def _close_all(self, *, kill: bool) -> None:
        for worker in self.workers:
            if kill:
                worker.child.kill()
            worker.child.close()


class Parser:
    """Turns a stream of fetch results into (result, parsed object or None) in the same order."""

    def __init__(self, workers: int, policy: Policy = DEFAULT_POLICY) -> None:
        self.workers = workers
        self.policy = policy
        self._pool: _Pool | None = None

    async def _started(self) -> _Pool:
        """The workers, started by the first unit that needs them; every unit awaits the same start."""
        if self._pool is None:
            self._pool = _Pool(self.workers)
        pool = self._pool
        await asyncio.shield(pool.ready)
        return pool

    async def aclose(self) -> None:
        """Stop the workers, if any were started (at the end of a run)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(kill=False)

    async def discard_broken_pool(self) -> None:
        """After a worker died outright: kill the others too, so the next unit starts fresh ones."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(kill=True)

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
        in_flight: deque[tuple[list[FetchResult], asyncio.Future[list[ParsedObject]]]] = deque()
        batch: list[FetchResult] = []
        weight = 0

        def submit() -> None:
            nonlocal batch, weight
            if not batch:
                return
            items = [item for result in batch if (item := _item(result)) is not None]
            future = pool.submit(items, self.policy)
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
            pool = await self._started()
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
        except WorkerProcessDiedError:
            await self.discard_broken_pool()
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


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's error as seen (asyncio logs unseen ones): whoever awaits it still gets it."""
    if not future.cancelled():
        future.exception()
