"""`plan`: roots whole without a destination; the recorded split of each day with one."""

from __future__ import annotations

import asyncio
import datetime as dt

import orjson

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import compact, plan, verify, write_plan
from archiver.engine.units import UnitScope, shard_key
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore

D20 = dt.date(2024, 8, 20)
SETTINGS = Settings(parse_workers=1, retire_grace_seconds=0, unit_max_objects=10)


def clock() -> dt.datetime:
    return dt.datetime(2024, 8, 21, tzinfo=dt.UTC)


def corpus(source: MemoryStore) -> None:
    for i in range(30):
        source.add(job_key(str(100 + i)), job_body(str(100 + i)))
    source.add("5234/activity/2024-08-20/e1.json", b"{}")
    source.add("5234/jobs/77/20240820/100/readme.txt", b"not json")


def test_without_a_destination_each_root_is_printed_whole_and_unrecorded() -> None:
    async def scenario() -> None:
        source = MemoryStore()
        corpus(source)
        units = await plan(source, None, SETTINGS)
        assert [(u.unit, u.objects, u.recorded) for u in units] == [
            ("day=2024-08-20", 30, False),
            ("loose=2024-08-20", 1, False),
        ]
        assert units[0].as_dict() == {
            "unit": "day=2024-08-20",
            "shard_key": shard_key("day=2024-08-20"),
            "objects": 30,
            "recorded": False,
        }

    asyncio.run(scenario())


def test_with_a_destination_a_big_day_is_split_once_and_the_split_is_kept() -> None:
    async def scenario() -> None:
        # GIVEN a day of 30 jobs and a limit of 10 objects a unit
        source, dest = MemoryStore(), MemoryStore()
        corpus(source)
        # WHEN it is planned twice
        first = await plan(source, dest, SETTINGS)
        second = await plan(source, dest, SETTINGS)
        # THEN the day is split into leaves of at most 10, recorded, and the second plan agrees
        day_units = [u for u in first if u.unit.startswith("day=")]
        assert len(day_units) >= 3 and all(u.objects is not None and u.objects <= 10 for u in day_units)
        assert sum(u.objects or 0 for u in day_units) == 30
        assert [u.unit for u in second] == [u.unit for u in first]
        assert ledger.decode_head(dest.body(ledger.head_key("day=2024-08-20"))).sealed
        # AND nothing was archived by planning
        assert not dest.keys("jobs/")
        # WHEN each planned unit is archived on its own (as parallel workers would)
        for unit in first:
            report = await compact(source, dest, SETTINGS, scope=UnitScope(unit=unit.unit), clock=clock)
            assert not report.failures
        # THEN the whole window verifies
        checked = await verify(source, dest, SETTINGS)
        assert checked.ok and (checked.objects_archived, checked.objects_quarantined) == (30, 1)

    asyncio.run(scenario())


def test_a_plan_is_written_as_a_jsonl_manifest() -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        corpus(source)
        units = await plan(source, dest, SETTINGS)
        key = await write_plan(dest, units, "backfill-1")
        assert key == "_archiver/plans/backfill-1.jsonl"
        lines = [orjson.loads(line) for line in dest.body(key).splitlines()]
        assert lines == [{"unit": unit.unit} for unit in units]

    asyncio.run(scenario())
