"""The garbage collector during a run: young collections are rarer, the process's settings come back."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc

from archiver.config import Settings
from archiver.engine.api import compact, compact_keys
from archiver.engine.collector import GEN0_THRESHOLD, fewer_collections
from archiver.storage.store import Fetched
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore

SETTINGS = Settings(parse_workers=1, retire_grace_seconds=0)


def clock() -> dt.datetime:
    return dt.datetime(2024, 8, 21, 12, 0, tzinfo=dt.UTC)


class WatchedStore(MemoryStore):
    """A source that notes the collector's thresholds at every GET."""

    def __init__(self) -> None:
        super().__init__()
        self.thresholds: list[tuple[int, ...]] = []

    async def get(self, key: str) -> Fetched:
        self.thresholds.append(gc.get_threshold())
        return await super().get(key)


def test_nested_runs_keep_fewer_collections_until_the_last_one_leaves() -> None:
    # GIVEN the process's own thresholds
    before = gc.get_threshold()
    # WHEN two runs overlap
    with fewer_collections():
        first = gc.get_threshold()
        with fewer_collections():
            nested = gc.get_threshold()
        after_nested = gc.get_threshold()
    # THEN young collections are rarer while either runs, the older generations untouched
    assert first[0] == nested[0] == after_nested[0] == max(before[0], GEN0_THRESHOLD)
    assert first[1:] == before[1:]
    # AND the process's settings are back once the last one has left
    assert gc.get_threshold() == before


def test_settings_come_back_after_a_failure() -> None:
    # GIVEN the process's own thresholds
    before = gc.get_threshold()
    # WHEN a run inside fails
    try:
        with fewer_collections():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    # THEN they are back
    assert gc.get_threshold() == before


def test_compact_and_compact_keys_read_objects_with_fewer_collections() -> None:
    async def scenario() -> None:
        # GIVEN a source of three jobs and the process's own thresholds
        source, dest = WatchedStore(), MemoryStore()
        keys = [job_key(job) for job in ("100", "101", "102")]
        for key, job in zip(keys, ("100", "101", "102"), strict=True):
            source.add(key, job_body(job))
        before = gc.get_threshold()
        # WHEN a run archives them, and a run for named keys reads one changed since
        report = await compact(source, dest, SETTINGS, clock=clock)
        source.add(keys[0], job_body("100", status="failed"))
        again = await compact_keys(source, dest, SETTINGS, [keys[0]], clock=clock)
        # THEN every object was read with young collections rarer
        assert report.objects_archived == 3 and again.objects_archived == 1
        assert len(source.thresholds) == 4
        assert all(seen[0] >= GEN0_THRESHOLD for seen in source.thresholds)
        # AND the process's settings are back after each run
        assert gc.get_threshold() == before

    asyncio.run(scenario())
