"""Discovery (days pruned by the window, loose dated folders, mixed folders) and iter_root in key order."""

from __future__ import annotations

import asyncio
import datetime as dt

from archiver.engine.listing import SourcePlan, Window, iter_root, plan_source
from archiver.engine.units import folder_of, root_of_key
from tests.unit.engine.jobs import job_folder_of, job_key
from tests.unit.engine.memory_store import MemoryStore

D19, D20, D21 = dt.date(2024, 8, 19), dt.date(2024, 8, 20), dt.date(2024, 8, 21)


def source_tree() -> MemoryStore:
    """Three days of two workspaces and recipes, user activity by date, and odd keys."""
    store = MemoryStore(page_size=2)
    for day in (D19, D20, D21):
        for user, recipe in (("5234", "77"), ("5234", "78"), ("6000", "77")):
            for job in ("100", "101"):
                store.add(job_key(job, user_id=user, recipe_id=recipe, day=day), b"{}")
    store.add(job_key("101", stamp="120000", status="failed"), b"{}")  # a second version on the 20th
    store.add("5234/jobs/77/20240820/stray.json", b"{}")
    store.add("5234/jobs/77/notes/x.json", b"{}")  # a non-day folder under a recipe
    store.add("5234/activity/2024-08-20/e1.json", b"{}")
    store.add("5234/activity/2024-08-21/e2.json", b"{}")
    store.add("audit/20240819/e3.json", b"{}")
    store.add("misc/readme.json", b"{}")
    store.add("deep/a/b/c/d/2024-08-20/e4.json", b"{}")  # deeper than discovery descends
    store.add("deep/a/b/c/d/e5.json", b"{}")
    store.add("top.json", b"{}")
    return store


async def listed(
    store: MemoryStore, plan: SourcePlan, root: str, lo: str | None = None, hi: str | None = None
) -> list[str]:
    return [info.key async for info in iter_root(store, plan, root, lo, hi)]


def test_discovery_finds_every_root_of_an_unbounded_window() -> None:
    async def scenario() -> None:
        plan = await plan_source(source_tree(), Window())
        assert plan.roots() == [
            "day=2024-08-19",
            "day=2024-08-20",
            "day=2024-08-21",
            "loose=2024-08-19",
            "loose=2024-08-20",
            "loose=2024-08-21",
            "loose=undated",
        ]
        assert plan.folders["day=2024-08-20"] == [
            "5234/jobs/77/20240820/",
            "5234/jobs/78/20240820/",
            "6000/jobs/77/20240820/",
        ]
        assert plan.mixed == ["5234/jobs/77/notes/", "deep/a/b/c/d/"]

    asyncio.run(scenario())


def test_a_window_prunes_day_folders_and_dated_loose_keys() -> None:
    async def scenario() -> None:
        plan = await plan_source(source_tree(), Window(D20, D20))
        assert plan.roots() == ["day=2024-08-20", "loose=2024-08-20", "loose=undated"]
        assert not any(
            "20240819" in folder or "20240821" in folder for f in plan.folders.values() for folder in f
        )

    asyncio.run(scenario())


def test_a_root_streams_its_objects_in_key_order_across_folders_and_pages() -> None:
    async def scenario() -> None:
        store = source_tree()
        plan = await plan_source(store, Window())
        keys = await listed(store, plan, "day=2024-08-20")
        assert keys == sorted(keys)
        assert len(keys) == 3 * 2 + 2  # six jobs, a second version, the stray file
        assert "5234/jobs/77/20240820/stray.json" in keys

    asyncio.run(scenario())


def test_every_listed_key_belongs_to_the_root_that_lists_it() -> None:
    async def scenario() -> None:
        # GIVEN the whole source
        store = source_tree()
        plan = await plan_source(store, Window())
        seen: list[str] = []
        for root in plan.roots():
            keys = await listed(store, plan, root)
            # THEN a key is listed under the root its key alone names (compact_keys routes by that)
            assert {root_of_key(key) for key in keys} == {root}
            seen += keys
        # AND every key is listed exactly once
        assert sorted(seen) == sorted(store.objects)

    asyncio.run(scenario())


def test_a_key_range_starts_at_a_folder_and_stops_before_another() -> None:
    async def scenario() -> None:
        store = source_tree()
        plan = await plan_source(store, Window())
        lo = job_folder_of("101", user_id="5234", recipe_id="77", day=D20)
        hi = job_folder_of("100", user_id="6000", recipe_id="77", day=D20)
        keys = await listed(store, plan, "day=2024-08-20", lo, hi)
        # THEN both versions of the job at `lo` are in, the job at `hi` is not (a job folder named by
        # 3 digits could be an embedded job's first folder: its jobs' files are kept by their name stem)
        assert [folder_of(key) for key in keys] == [
            lo + "5234-77-101-",
            lo + "5234-77-101-",
            "5234/jobs/77/20240820/stray.json",
            job_folder_of("100", user_id="5234", recipe_id="78", day=D20) + "5234-78-100-",
            job_folder_of("101", user_id="5234", recipe_id="78", day=D20) + "5234-78-101-",
        ]
        assert all(lo <= folder_of(key) < hi for key in keys)
        everything = await listed(store, plan, "day=2024-08-20")
        below = await listed(store, plan, "day=2024-08-20", None, lo)
        above = await listed(store, plan, "day=2024-08-20", hi, None)
        assert below + keys + above == everything

    asyncio.run(scenario())


def test_a_loose_root_takes_its_dated_keys_from_mixed_folders_only() -> None:
    async def scenario() -> None:
        store = source_tree()
        plan = await plan_source(store, Window())
        assert await listed(store, plan, "loose=2024-08-20") == [
            "5234/activity/2024-08-20/e1.json",
            "deep/a/b/c/d/2024-08-20/e4.json",
        ]
        assert await listed(store, plan, "loose=undated") == [
            "5234/jobs/77/notes/x.json",
            "deep/a/b/c/d/e5.json",
            "misc/readme.json",
            "top.json",
        ]
        # AND a range of a loose root is a range of keys
        assert await listed(store, plan, "loose=undated", "misc/", "top.json") == ["misc/readme.json"]

    asyncio.run(scenario())
