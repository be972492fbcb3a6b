"""Discovery (days pruned by the window, loose dated folders, mixed folders) and iter_root in key order."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from archiver.engine.listing import ListingOptions, SourcePlan, Window, iter_root, plan_source
from archiver.engine.scans import Listing
from archiver.engine.units import folder_of, root_of_key
from tests.unit.engine.jobs import job_folder_of, job_key
from tests.unit.engine.memory_store import MemoryStore

D19, D20, D21 = dt.date(2024, 8, 19), dt.date(2024, 8, 20), dt.date(2024, 8, 21)
FOLDERS = ListingOptions(Listing.FOLDERS)
PLANS = [ListingOptions(choice) for choice in (Listing.FOLDERS, Listing.PREFIX, Listing.FLAT)]


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
        plan = await plan_source(source_tree(), Window(), FOLDERS)
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
        plan = await plan_source(source_tree(), Window(D20, D20), FOLDERS)
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


# --------------------------------------------------------------------------- listing plans


def cluttered_tree() -> MemoryStore:
    """`source_tree` plus what tools leave inside a workspace's `jobs/` folder, around the day folders."""
    store = source_tree()
    for key in (
        "5234/jobs/readme.json",  # directly in jobs/
        "5234/jobs/77/.meta/info.json",  # sorts before every day folder
        "5234/jobs/77/0notes.json",
        "5234/jobs/77/20240820x.json",  # between two day folders
        "5234/jobs/77/zz/2024-08-20/e.json",  # after every day folder, dated
        "5234/jobs/77/20240821/j-9/.meta/info.json",  # deep inside a job folder
        "6000/jobs/77/20240818/100/6000-77-100-20240818101500-succeeded.json",  # an old day
        "6000/jobs/77/20240822/100/6000-77-100-20240822101500-succeeded.json",  # a later day
    ):
        store.add(key, b"{}")
    return store


async def listing_by_root(
    store: MemoryStore, window: Window, options: ListingOptions
) -> dict[str, list[str]]:
    plan = await plan_source(store, window, options)
    return {root: await listed(store, plan, root) for root in plan.roots()}


WINDOWS = [Window(), Window(D20, D20), Window(D20, None), Window(None, D20), Window(D19, D21)]


@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_every_listing_plan_lists_the_same_keys_into_the_same_roots(window: Window) -> None:
    async def scenario() -> None:
        # GIVEN workspaces whose jobs/ folders hold day folders and other keys around and inside them
        store = cluttered_tree()
        # WHEN the window is listed by folders, by recipe prefix and flat
        by_plan = [await listing_by_root(store, window, options) for options in PLANS]
        # THEN every plan finds the same roots holding the same keys in the same order
        assert by_plan[1] == by_plan[0]
        assert by_plan[2] == by_plan[0]
        # AND every key is in the root its key names, and in the window
        for root, keys in by_plan[0].items():
            assert keys and {root_of_key(key) for key in keys} == {root}

    asyncio.run(scenario())


def test_inside_a_recipe_folder_a_window_cuts_at_its_first_and_last_day() -> None:
    async def scenario() -> None:
        # GIVEN the cluttered source, and a window of one day
        store = cluttered_tree()
        for options in PLANS:
            # WHEN it is listed
            keys = {
                key
                for keys in (await listing_by_root(store, Window(D20, D20), options)).values()
                for key in keys
            }
            # THEN what sorts inside a recipe folder before the window's first day or after its last day
            # is outside the window; what lies between, or directly in jobs/, is in when its root is
            assert "5234/jobs/77/.meta/info.json" not in keys
            assert "5234/jobs/77/0notes.json" not in keys
            assert "5234/jobs/77/zz/2024-08-20/e.json" not in keys
            assert "5234/jobs/77/20240820x.json" in keys
            assert "5234/jobs/readme.json" in keys

    asyncio.run(scenario())


def test_a_flat_listing_seeks_past_old_days_instead_of_paging_through_them() -> None:
    async def scenario() -> None:
        # GIVEN two recipes with 60 days of 3 jobs each, listed 3 keys a page
        store = MemoryStore(page_size=3)
        start = dt.date(2024, 6, 22)
        for recipe in ("77", "78"):
            for offset in range(60):
                for job in ("100", "101", "102"):
                    store.add(job_key(job, recipe_id=recipe, day=start + dt.timedelta(days=offset)), b"{}")
        # WHEN the last day is listed by each plan
        lists: dict[str, int] = {}
        listings = []
        for options in PLANS:
            store.counts.list = 0
            listings.append(await listing_by_root(store, Window(D20, D20), options))
            lists[options.choice.value] = store.counts.list
        # THEN all find the same 6 keys; flat seeks to the window in each recipe, as prefix starts there,
        # so neither reads the 59 old days a page at a time (a plain flat listing would: 120 LISTs)
        assert listings[0] == listings[1] == listings[2]
        assert sum(len(keys) for keys in listings[0].values()) == 6
        assert lists["prefix"] <= lists["folders"] and lists["flat"] <= lists["folders"]
        assert lists["flat"] <= 2 + 2 * 2  # the root and workspace levels, then two pages a recipe

    asyncio.run(scenario())


def test_a_flat_listing_whose_last_page_ends_past_the_window_lists_no_further() -> None:
    async def scenario() -> None:
        # GIVEN a recipe of five days, every key of its jobs/ folder on one page
        store = MemoryStore(page_size=100)
        for day in range(18, 23):
            store.add(job_key("100", day=dt.date(2024, 8, day)), b"{}")
        flat = ListingOptions(Listing.FLAT)
        # WHEN it is listed flat for the 20th on, then for the 20th alone (the page ends past the window)
        lists = []
        for window in (Window(D20, None), Window(D20, D20)):
            store.counts.list = 0
            await listing_by_root(store, window, flat)
            lists.append(store.counts.list)
        # THEN both cost the same LISTs: no seek past the last page starts another one
        assert lists[0] == lists[1]

    asyncio.run(scenario())


def test_a_workspace_over_the_key_budget_is_listed_by_folders_instead() -> None:
    async def scenario() -> None:
        # GIVEN a budget of 10 held keys, less than either workspace's jobs/ folder holds
        store = source_tree()
        small = ListingOptions(Listing.FLAT, max_keys=10)
        # WHEN the source is planned flat
        plan = await plan_source(store, Window(), small)
        # THEN workspaces that do not fit are listed by folders, and the listing is the same as ever
        assert plan.listing.get("folders", 0) >= 1 and sum(plan.listing.values()) == 2
        assert await listing_by_root(store, Window(), small) == await listing_by_root(
            store, Window(), FOLDERS
        )

    asyncio.run(scenario())
