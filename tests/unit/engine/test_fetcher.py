"""Fetching in listing order with bounded requests and a byte budget that results hold until released."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from archiver.engine.fetcher import ByteBudget, FetchResult, fetch_in_order
from archiver.errors import NotFoundError
from archiver.storage.store import Fetched, ObjectInfo
from tests.unit.engine.memory_store import MemoryStore


class WatchedBudget(ByteBudget):
    """A budget that remembers the most it ever had out, and what was out when each grant was made."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.peak = 0
        self.grants: list[tuple[int, int]] = []

    def try_acquire(self, amount: int) -> bool:
        before = self.used
        granted = super().try_acquire(amount)
        if granted:
            self.grants.append((before, amount))
            self.peak = max(self.peak, self.used)
        return granted


class SlowStore(MemoryStore):
    """Reads take a moment, so requests overlap; counts how many are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0
        self.broken: set[str] = set()

    async def get(self, key: str) -> Fetched:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.002)
            if key in self.broken:
                raise RuntimeError("the client blew up")
            return await super().get(key)
        finally:
            self.in_flight -= 1


def objects(store: MemoryStore, sizes: list[int]) -> list[ObjectInfo]:
    return [store.add(f"k/{i:04d}.json", b"x" * size) for i, size in enumerate(sizes)]


def test_a_budget_grants_the_first_request_whatever_its_size_and_then_only_what_fits() -> None:
    budget = ByteBudget(100)
    assert budget.try_acquire(250)  # nothing out: an object bigger than the budget may go alone
    assert not budget.try_acquire(1)
    budget.release(250)
    assert budget.try_acquire(60) and budget.try_acquire(40) and not budget.try_acquire(1)
    budget.release(40)
    assert budget.used == 60


def test_results_come_in_the_order_given_with_their_bodies() -> None:
    async def scenario() -> None:
        store = SlowStore()
        infos = objects(store, [5, 1, 9, 3, 7, 2, 8])
        budget = ByteBudget(1000)
        keys = []
        async for result in fetch_in_order(
            store, reversed(infos), concurrency=4, budget=budget, max_object_bytes=100
        ):
            assert result.fetched is not None and len(result.fetched.body) == result.info.size
            keys.append(result.info.key)
            result.release()
        assert keys == [info.key for info in reversed(infos)]
        assert store.most_in_flight == 4 and budget.used == 0

    asyncio.run(scenario())


def test_the_budget_is_never_exceeded_while_results_are_unreleased() -> None:
    async def scenario() -> None:
        # GIVEN objects of mixed sizes, a budget of 100 bytes, and a consumer that holds three results
        store = SlowStore()
        sizes = [30, 10, 45, 20, 25, 5, 40, 35, 15, 50, 10, 30] * 3
        infos = objects(store, sizes)
        budget = WatchedBudget(100)
        held: deque[FetchResult] = deque()
        seen = []
        # WHEN everything is fetched
        async for result in fetch_in_order(store, infos, concurrency=8, budget=budget, max_object_bytes=1000):
            seen.append(result.info.key)
            held.append(result)
            # THEN what is in flight plus what the consumer holds stays within the budget
            assert budget.used <= 100
            assert sum(r.info.size for r in held) <= budget.used
            if len(held) == 3:
                held.popleft().release()
        for result in held:
            result.release()
        assert seen == [info.key for info in infos]
        assert budget.peak <= 100 and budget.used == 0

    asyncio.run(scenario())


def test_an_object_bigger_than_the_budget_is_read_only_when_nothing_else_is_out() -> None:
    async def scenario() -> None:
        store = SlowStore()
        infos = objects(store, [10, 20, 500, 10, 10])
        budget = WatchedBudget(100)
        async for result in fetch_in_order(store, infos, concurrency=8, budget=budget, max_object_bytes=1000):
            result.release()
        (before_big,) = [before for before, amount in budget.grants if amount == 500]
        assert before_big == 0

    asyncio.run(scenario())


def test_an_object_over_the_size_limit_is_never_read() -> None:
    async def scenario() -> None:
        store = SlowStore()
        infos = objects(store, [10, 5000, 10])
        budget = ByteBudget(100)
        results = [
            r async for r in fetch_in_order(store, infos, concurrency=2, budget=budget, max_object_bytes=100)
        ]
        assert [r.oversized for r in results] == [False, True, False]
        assert results[1].fetched is None and store.counts.get == 2
        for result in results:
            result.release()
        assert budget.used == 0

    asyncio.run(scenario())


def test_a_failed_or_vanished_read_is_a_result_not_an_exception() -> None:
    async def scenario() -> None:
        store = SlowStore()
        infos = objects(store, [10, 10, 10])
        store.unreadable.add(infos[0].key)
        del store.objects[infos[1].key]
        budget = ByteBudget(100)
        results = [
            r async for r in fetch_in_order(store, infos, concurrency=3, budget=budget, max_object_bytes=100)
        ]
        assert results[0].error is not None and results[0].error.retryable
        assert isinstance(results[1].error, NotFoundError)
        assert results[2].fetched is not None
        for result in results:
            result.release()
        assert budget.used == 0

    asyncio.run(scenario())


def test_stopping_early_gives_back_what_was_in_flight() -> None:
    async def scenario() -> None:
        store = SlowStore()
        infos = objects(store, [10] * 20)
        budget = ByteBudget(1000)
        stream = fetch_in_order(store, infos, concurrency=8, budget=budget, max_object_bytes=100)
        first = await anext(stream)
        first.release()
        assert budget.used > 0  # the next reads are in flight
        await stream.aclose()
        assert budget.used == 0

    asyncio.run(scenario())


def test_an_unexpected_error_from_the_store_gives_back_the_budget_of_the_read_that_raised() -> None:
    async def scenario() -> None:
        # GIVEN a store whose client raises something other than an ArchiverError for one key
        store = SlowStore()
        infos = objects(store, [10, 10, 10, 10])
        store.broken.add(infos[1].key)
        budget = ByteBudget(100)
        # WHEN the stream meets it
        with pytest.raises(RuntimeError):
            async for result in fetch_in_order(
                store, infos, concurrency=4, budget=budget, max_object_bytes=100
            ):
                result.release()
        # THEN the budget, shared by the whole run, is whole again for the other units
        assert budget.used == 0

    asyncio.run(scenario())


def test_sequential_reads_take_no_budget_and_keep_order() -> None:
    async def scenario() -> None:
        store = MemoryStore(sequential_reads=True)
        infos = objects(store, [10, 500, 10])
        budget = ByteBudget(100)
        results = [
            r
            async for r in fetch_in_order(
                store, infos, concurrency=8, budget=budget, max_object_bytes=100, sequential=True
            )
        ]
        assert [(r.info.key, r.oversized) for r in results] == [(i.key, i.size > 100) for i in infos]
        assert budget.used == 0 and all(r.budget is None for r in results)

    asyncio.run(scenario())
