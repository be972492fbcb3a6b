"""Parsing fetched objects inline or in a process pool: order kept, budget held until parsed, no deadlock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import pytest

from archiver.engine.fetcher import ByteBudget, FetchResult, fetch_in_order
from archiver.engine.parsing import BATCH_OBJECTS, POOL_MIN_OBJECTS, Parser, parse_batch
from archiver.errors import WorkerProcessDiedError
from archiver.formats.layout import parse_key
from archiver.formats.policy import read_policy
from archiver.formats.records import ParsedObject
from archiver.storage.store import ObjectInfo
from tests.unit.engine.descendants import child_pids
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore

POOLED = POOL_MIN_OBJECTS + 44  # enough objects for the pool, and a last batch that is not full


def corpus(store: MemoryStore, count: int) -> list[ObjectInfo]:
    infos = [store.add(job_key(f"{1000 + i}"), job_body(f"{1000 + i}")) for i in range(count)]
    # one malformed object among them, quarantined in its place
    infos[7] = store.add(infos[7].key, b'{"id": 1007, "status": ')
    return infos


async def parse_all(
    parser: Parser, store: MemoryStore, infos: list[ObjectInfo], budget: ByteBudget
) -> list[tuple[FetchResult, ParsedObject | None]]:
    results = fetch_in_order(store, infos, concurrency=16, budget=budget, max_object_bytes=1 << 20)
    return [pair async for pair in parser.parse(results, expected=len(infos))]


def job_ids(pairs: list[tuple[FetchResult, ParsedObject | None]]) -> list[str | None]:
    return [parsed.jobs[0].job_id if parsed is not None and parsed.jobs else None for _, parsed in pairs]


def test_parse_batch_keeps_the_order_of_its_items() -> None:
    keys = [job_key(f"{n}") for n in (3, 1, 2)]
    items = [(job_body(key.split("/")[4]), key, '"e"', parse_key(key)) for key in keys]
    assert [parsed.jobs[0].job_id for parsed in parse_batch(items)] == ["3", "1", "2"]


def test_inline_parsing_keeps_order_and_releases_each_body_once_the_consumer_moves_on() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        infos = corpus(store, 20)
        budget = ByteBudget(1 << 20)
        parser = Parser(1)
        held_while_consuming = []
        results = fetch_in_order(store, infos, concurrency=4, budget=budget, max_object_bytes=1 << 20)
        keys = []
        async for result, parsed in parser.parse(results, expected=len(infos)):
            keys.append(result.info.key)
            held_while_consuming.append(result.budget is not None)
            assert parsed is not None
        assert keys == [info.key for info in infos]
        assert all(held_while_consuming)  # a body counts until it is parsed and handed over
        assert budget.used == 0

    asyncio.run(scenario())


def test_the_pool_keeps_the_listing_order_of_hundreds_of_objects() -> None:
    async def scenario() -> None:
        # GIVEN more objects than the pool's threshold, one malformed, one vanished
        store = MemoryStore()
        infos = corpus(store, POOLED)
        del store.objects[infos[100].key]
        budget = ByteBudget(1 << 24)
        parser = Parser(2)
        try:
            # WHEN they are fetched and parsed in worker processes
            pairs = await asyncio.wait_for(parse_all(parser, store, infos, budget), 120)
        finally:
            await parser.aclose()
        # THEN every object comes back in listing order, each with its own parse
        assert [result.info.key for result, _ in pairs] == [info.key for info in infos]
        expected: list[str | None] = [f"{1000 + i}" for i in range(POOLED)]
        expected[7] = expected[100] = None
        assert job_ids(pairs) == expected
        assert pairs[7][1] is not None and pairs[7][1].rejection is not None
        assert pairs[100][1] is None and pairs[100][0].error is not None
        assert budget.used == 0

    asyncio.run(scenario())


def test_rows_parsed_in_worker_processes_leave_them_under_the_runs_policy() -> None:
    async def scenario() -> None:
        # GIVEN enough objects for the pool, and a policy that drops the lines' adapter operations
        store = MemoryStore()
        infos = corpus(store, POOLED)
        policy = read_policy('[columns.job_lines]\nadapter_operation = "drop"\n')
        parser = Parser(2, policy)
        try:
            # WHEN they are parsed in worker processes
            pairs = await asyncio.wait_for(parse_all(parser, store, infos, ByteBudget(1 << 24)), 120)
        finally:
            await parser.aclose()
        # THEN every line row came back under that policy
        rows = [row for _, parsed in pairs if parsed is not None for job in parsed.jobs for row in job.lines]
        assert len(rows) == POOLED - 1
        assert all(row["adapter_operation"] is None for row in rows)

    asyncio.run(scenario())


def test_the_pool_finishes_when_the_byte_budget_is_smaller_than_a_batch() -> None:
    async def scenario() -> None:
        # GIVEN a byte budget that holds about a third of one batch of bodies
        store = MemoryStore()
        infos = corpus(store, POOLED)
        batch_bytes = sum(info.size for info in infos[:BATCH_OBJECTS])
        budget = ByteBudget(batch_bytes // 3)
        parser = Parser(2)
        try:
            # WHEN everything is fetched and parsed
            pairs = await asyncio.wait_for(parse_all(parser, store, infos, budget), 60)
        finally:
            await parser.aclose()
        # THEN it completes (bodies waiting for a full batch must not starve the fetcher), in order
        assert [result.info.key for result, _ in pairs] == [info.key for info in infos]
        assert budget.used == 0

    asyncio.run(scenario())


def test_closing_the_pooled_stream_early_gives_every_byte_back() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        infos = corpus(store, POOLED)
        budget = ByteBudget(1 << 24)
        parser = Parser(2)
        try:
            stream = parser.parse(
                fetch_in_order(store, infos, concurrency=16, budget=budget, max_object_bytes=1 << 20),
                expected=len(infos),
            )
            first, _ = await anext(stream)
            assert first.info.key == infos[0].key
            await stream.aclose()
            # the fetcher's reads still in flight are cancelled when it is finalized, a moment later
            for _ in range(10):
                await asyncio.sleep(0.01)
        finally:
            await parser.aclose()
        assert budget.used == 0

    asyncio.run(scenario())


async def _results(infos: list[ObjectInfo], budget: ByteBudget) -> AsyncIterator[FetchResult]:
    for info in infos:
        await budget.acquire(info.size)
        yield FetchResult(info, None, budget=budget)


def test_an_unread_object_parses_to_nothing_in_its_place() -> None:
    async def scenario() -> None:
        infos = [ObjectInfo(f"k/{i}.json", 5, '"e"') for i in range(3)]
        budget = ByteBudget(100)
        pairs = [pair async for pair in Parser(1).parse(_results(infos, budget), expected=3)]
        assert [(result.info.key, parsed) for result, parsed in pairs] == [(info.key, None) for info in infos]
        assert budget.used == 0

    asyncio.run(scenario())


def test_a_pool_whose_workers_died_is_replaced_for_the_next_unit() -> None:
    async def scenario() -> None:
        # GIVEN a pool that has parsed once, whose worker processes are then killed outright
        store = MemoryStore()
        infos = corpus(store, POOLED)
        parser = Parser(2)
        try:
            await asyncio.wait_for(parse_all(parser, store, infos, ByteBudget(1 << 24)), 120)
            workers = child_pids()
            assert len(workers) == 2
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # WHEN the next unit is parsed, and the one after it
            with pytest.raises(WorkerProcessDiedError, match=r"killed by signal 9"):
                await asyncio.wait_for(parse_all(parser, store, infos, ByteBudget(1 << 24)), 120)
            pairs = await asyncio.wait_for(parse_all(parser, store, infos, ByteBudget(1 << 24)), 120)
        finally:
            await parser.aclose()
        # THEN the unit that met the dead pool fails, and the next one gets a fresh pool
        expected: list[str | None] = [f"{1000 + i}" for i in range(POOLED)]
        expected[7] = None
        assert job_ids(pairs) == expected

    asyncio.run(scenario())


def test_a_worker_killed_under_two_units_fails_both_units_and_cancels_neither() -> None:
    async def drain(stream: AsyncIterator[tuple[FetchResult, ParsedObject | None]]) -> int:
        return len([pair async for pair in stream])

    async def scenario() -> None:
        # GIVEN two units parsing at once in the same workers, both with batches in flight
        store = MemoryStore()
        infos = corpus(store, POOLED)
        parser = Parser(2)
        try:
            streams = [
                parser.parse(
                    fetch_in_order(
                        store, infos, concurrency=16, budget=ByteBudget(1 << 24), max_object_bytes=1 << 20
                    ),
                    expected=len(infos),
                )
                for _ in range(2)
            ]
            for stream in streams:
                await asyncio.wait_for(anext(stream), 60)
            # WHEN the workers are killed outright
            for pid in child_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(drain(stream) for stream in streams), return_exceptions=True), 60
            )
            # THEN each unit fails with the named error (neither is cancelled); the next gets fresh workers
            assert [type(outcome) for outcome in outcomes] == [WorkerProcessDiedError] * 2
            pairs = await asyncio.wait_for(parse_all(parser, store, infos, ByteBudget(1 << 24)), 120)
            assert len(pairs) == POOLED
        finally:
            await parser.aclose()

    asyncio.run(scenario())
