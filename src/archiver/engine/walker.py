"""Walk the source layout level by level, pruning whole days outside the window.

`user_id/` -> `jobs/` -> `recipe_id/` -> `YYYYMMDD/` are listed with a delimiter,
and the day level starts after the window's first day, so days before `since`
are never listed and listing stops past `until`. Only the kept day folders are
listed in full. Anything outside the layout is a loose subtree: listed in full,
its JSON objects read and classified by content.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from archiver.engine.units import LOOSE_UNIT, day_unit
from archiver.formats.layout import JOBS_FOLDER, format_day, parse_day
from archiver.storage.store import ListPage, ObjectInfo, ObjectStore

LIST_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Window:
    """Inclusive range of layout days; None on a side means unbounded."""

    since: dt.date | None = None
    until: dt.date | None = None

    def contains(self, day: dt.date) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


@dataclass(slots=True)
class SourcePlan:
    """What lies in the window: per unit, the folders to list in full (and loose objects already seen)."""

    day_prefixes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    loose_prefixes: list[str] = field(default_factory=list)
    loose_objects: list[ObjectInfo] = field(default_factory=list)

    def units(self) -> list[str]:
        names = sorted(self.day_prefixes)
        if self.loose_prefixes or self.loose_objects:
            names.append(LOOSE_UNIT)
        return names


async def _list_level(store: ObjectStore, prefix: str, start_after: str | None = None) -> ListPage:
    """Every object and common prefix directly under `prefix` (all pages)."""
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    async for page in store.list_pages(prefix, delimiter="/", start_after=start_after):
        objects.extend(page.objects)
        prefixes.extend(page.prefixes)
    return ListPage(tuple(objects), tuple(prefixes))


async def _bounded(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Await the calls with at most LIST_CONCURRENCY in flight."""
    gate = asyncio.Semaphore(LIST_CONCURRENCY)

    async def run(call: Coroutine[Any, Any, None]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(run(call) for call in calls))


async def plan_source(store: ObjectStore, window: Window, *, include_loose: bool = True) -> SourcePlan:
    """Discover the day folders in the window and the loose subtrees, listing as little as possible."""
    plan = SourcePlan()
    root = await _list_level(store, "")
    plan.loose_objects.extend(root.objects)
    user_levels: dict[str, ListPage] = {}

    async def list_user(prefix: str) -> None:
        user_levels[prefix] = await _list_level(store, prefix)

    await _bounded(list_user(prefix) for prefix in root.prefixes)
    jobs_prefixes: list[str] = []
    for user_prefix in sorted(user_levels):
        level = user_levels[user_prefix]
        plan.loose_objects.extend(level.objects)
        for sub in level.prefixes:
            if sub == f"{user_prefix}{JOBS_FOLDER}/":
                jobs_prefixes.append(sub)
            else:
                plan.loose_prefixes.append(sub)

    recipe_prefixes: list[str] = []

    async def list_jobs(prefix: str) -> None:
        level = await _list_level(store, prefix)
        plan.loose_objects.extend(level.objects)
        recipe_prefixes.extend(level.prefixes)

    await _bounded(list_jobs(prefix) for prefix in jobs_prefixes)

    async def list_days(recipe_prefix: str) -> None:
        start_after = None
        if window.since is not None:
            # "YYYYMMDD" of the day before `since`, then a character above "/":
            # every day folder before `since` sorts at or before it.
            start_after = f"{recipe_prefix}{format_day(window.since - dt.timedelta(days=1))}0"
        async for page in store.list_pages(recipe_prefix, delimiter="/", start_after=start_after):
            plan.loose_objects.extend(page.objects)
            past_until = False
            for sub in page.prefixes:
                day = parse_day(sub[len(recipe_prefix) :].rstrip("/"))
                if day is None:
                    plan.loose_prefixes.append(sub)
                elif window.until is not None and day > window.until:
                    past_until = True
                elif window.contains(day):
                    plan.day_prefixes[day_unit(day)].append(sub)
            if past_until:
                break

    await _bounded(list_days(prefix) for prefix in recipe_prefixes)
    for prefixes in plan.day_prefixes.values():
        prefixes.sort()
    plan.loose_prefixes.sort()
    plan.loose_objects.sort(key=lambda info: info.key)
    if not include_loose:
        plan.loose_prefixes.clear()
        plan.loose_objects.clear()
    return plan


async def list_units(store: ObjectStore, plan: SourcePlan, units: list[str]) -> dict[str, list[ObjectInfo]]:
    """Every object of several units, each in key order, with as few LISTs as the layout allows.

    A recipe with several of these days is listed once, from its first day folder to
    past its last, instead of once per day; a recipe with one day lists that folder.
    """
    listings: dict[str, list[ObjectInfo]] = {unit: [] for unit in units}
    owner: dict[str, str] = {}
    spans: dict[str, list[str]] = defaultdict(list)
    calls: list[Coroutine[Any, Any, None]] = []
    for unit in units:
        if unit == LOOSE_UNIT:
            listings[unit].extend(plan.loose_objects)
            calls.extend(_list_prefix(store, prefix, listings[unit]) for prefix in plan.loose_prefixes)
            continue
        for prefix in plan.day_prefixes.get(unit, []):
            owner[prefix] = unit
            spans[prefix.rstrip("/").rsplit("/", 1)[0] + "/"].append(prefix)
    for recipe_prefix, day_prefixes in spans.items():
        if len(day_prefixes) == 1:
            prefix = day_prefixes[0]
            calls.append(_list_prefix(store, prefix, listings[owner[prefix]]))
        else:
            calls.append(_list_span(store, recipe_prefix, sorted(day_prefixes), owner, listings))
    await _bounded(calls)
    for objects in listings.values():
        objects.sort(key=lambda info: info.key)
    return listings


async def _list_prefix(store: ObjectStore, prefix: str, into: list[ObjectInfo]) -> None:
    async for page in store.list_pages(prefix):
        into.extend(page.objects)


async def _list_span(
    store: ObjectStore,
    recipe_prefix: str,
    day_prefixes: list[str],
    owner: dict[str, str],
    listings: dict[str, list[ObjectInfo]],
) -> None:
    """One listing across a recipe's day folders, from the first to past the last."""
    wanted = set(day_prefixes)
    last = day_prefixes[-1]
    async for page in store.list_pages(recipe_prefix, start_after=day_prefixes[0].rstrip("/")):
        for info in page.objects:
            if info.key > last and not info.key.startswith(last):
                return
            folder = info.key[: info.key.index("/", len(recipe_prefix)) + 1]
            if folder in wanted:
                listings[owner[folder]].append(info)


async def list_unit(store: ObjectStore, plan: SourcePlan, unit: str) -> list[ObjectInfo]:
    """Every object of one unit, in key order."""
    return (await list_units(store, plan, [unit]))[unit]
