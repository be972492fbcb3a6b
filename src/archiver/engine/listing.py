"""Walk the source, listing as little as possible: days pruned by the window, roots streamed in key order.

Discovery lists `user_id/` -> `jobs/` -> `recipe_id/` -> `YYYYMMDD/` with a
delimiter; the day level starts after the window's first day and stops past its
last, so days outside the window are never listed. Outside the layout, folders
are descended a few levels looking for date folders (`YYYYMMDD` or
`YYYY-MM-DD`), pruned the same way; a deeper subtree is listed whole, its keys
sorted into roots by the date they hold.

After discovery, a root's objects are streamed in key order (optionally only a
key range of it), one page at a time, so a day of any size never has to be held
in memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from archiver.engine.units import day_unit, folder_of, key_date, loose_unit
from archiver.formats.layout import JOBS_FOLDER, format_day, parse_day
from archiver.storage.store import ListPage, ObjectInfo, ObjectStore

LIST_CONCURRENCY = 16
LOOSE_DEPTH = 4
"""How many folder levels outside the layout are descended looking for date folders."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Window:
    """Inclusive range of layout days; None on a side means unbounded."""

    since: dt.date | None = None
    until: dt.date | None = None

    def contains(self, day: dt.date) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


@dataclass(slots=True)
class SourcePlan:
    """What lies in the window: per root, the folders to list in full and single objects seen on the way.

    `mixed` folders (outside the layout, too deep to descend) are listed whole by
    every root that may have keys in them; `mixed_roots` says which roots those are.
    """

    folders: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    objects: dict[str, list[ObjectInfo]] = field(default_factory=lambda: defaultdict(list))
    mixed: list[str] = field(default_factory=list)
    mixed_roots: set[str] = field(default_factory=set)
    window: Window = field(default_factory=Window)

    def roots(self) -> list[str]:
        return sorted(set(self.folders) | set(self.objects) | self.mixed_roots)


async def _list_level(store: ObjectStore, prefix: str, start_after: str | None = None) -> ListPage:
    """Every object and common prefix directly under `prefix` (all pages)."""
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    async for page in store.list_pages(prefix, delimiter="/", start_after=start_after):
        objects.extend(page.objects)
        prefixes.extend(page.prefixes)
    return ListPage(tuple(objects), tuple(prefixes))


async def bounded(calls: Iterable[Coroutine[Any, Any, None]], limit: int = LIST_CONCURRENCY) -> None:
    """Await the calls with at most `limit` in flight."""
    gate = asyncio.Semaphore(limit)

    async def run(call: Coroutine[Any, Any, None]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(run(call) for call in calls))


def _date_of_folder(name: str) -> dt.date | None:
    if len(name) == 8:
        return parse_day(name)
    if len(name) == 10 and name[4] == "-" and name[7] == "-":
        try:
            return dt.date.fromisoformat(name)
        except ValueError:
            return None
    return None


class _Discovery:
    """Builds a SourcePlan level by level."""

    def __init__(self, store: ObjectStore, window: Window) -> None:
        self.store = store
        self.window = window
        self.plan = SourcePlan(window=window)

    def add_object(self, info: ObjectInfo) -> None:
        day = key_date(info.key)
        if day is None or self.window.contains(day):
            self.plan.objects[loose_unit(day)].append(info)

    async def run(self) -> SourcePlan:
        root = await _list_level(self.store, "")
        for info in root.objects:
            self.add_object(info)
        await bounded(self.descend(prefix, 1) for prefix in root.prefixes)
        for folders in self.plan.folders.values():
            folders.sort()
        for objects in self.plan.objects.values():
            objects.sort(key=lambda info: info.key)
        self.plan.mixed.sort()
        return self.plan

    async def descend(self, prefix: str, depth: int) -> None:
        """One folder outside the layout (or a user folder that may hold `jobs/`)."""
        level = await _list_level(self.store, prefix)
        for info in level.objects:
            self.add_object(info)
        calls: list[Coroutine[Any, Any, None]] = []
        for sub in level.prefixes:
            name = sub[len(prefix) :].rstrip("/")
            day = _date_of_folder(name)
            if day is not None:
                if self.window.contains(day):
                    self.plan.folders[loose_unit(day)].append(sub)
            elif depth == 1 and name == JOBS_FOLDER:
                calls.append(self.list_jobs(sub))
            elif depth < LOOSE_DEPTH:
                calls.append(self.descend(sub, depth + 1))
            else:
                self.plan.mixed.append(sub)
        await bounded(calls)

    async def list_jobs(self, jobs_prefix: str) -> None:
        level = await _list_level(self.store, jobs_prefix)
        for info in level.objects:
            self.add_object(info)
        await bounded(self.list_days(recipe) for recipe in level.prefixes)

    async def list_days(self, recipe_prefix: str) -> None:
        start_after = None
        if self.window.since is not None:
            # "YYYYMMDD" of the day before `since`, then a character above "/":
            # every day folder before `since` sorts at or before it.
            start_after = f"{recipe_prefix}{format_day(self.window.since - dt.timedelta(days=1))}0"
        async for page in self.store.list_pages(recipe_prefix, delimiter="/", start_after=start_after):
            for info in page.objects:
                self.add_object(info)
            past_until = False
            for sub in page.prefixes:
                day = parse_day(sub[len(recipe_prefix) :].rstrip("/"))
                if day is None:
                    self.plan.mixed.append(sub)
                elif self.window.until is not None and day > self.window.until:
                    past_until = True
                elif self.window.contains(day):
                    self.plan.folders[day_unit(day)].append(sub)
            if past_until:
                break


async def plan_source(store: ObjectStore, window: Window) -> SourcePlan:
    """Discover the roots in the window and where their keys are, listing as little as possible."""
    plan = await _Discovery(store, window).run()
    if plan.mixed:
        # Keys of a mixed folder may carry any date: list them once to learn which roots they feed.
        async for info in _list_all(store, plan.mixed):
            day = key_date(info.key)
            if day is None or window.contains(day):
                plan.mixed_roots.add(loose_unit(day))
    log.debug("planned %d roots (%d mixed folders)", len(plan.roots()), len(plan.mixed))
    return plan


async def _list_all(store: ObjectStore, prefixes: Iterable[str]) -> AsyncIterator[ObjectInfo]:
    for prefix in prefixes:
        async for page in store.list_pages(prefix):
            for info in page.objects:
                yield info


def _start_after(prefix: str, lo: str | None) -> str | None:
    """StartAfter for keys of `prefix` at or above the folder `lo` (keys below it are filtered out too)."""
    if lo is None or lo <= prefix:
        return None
    return lo[:-1]


async def iter_root(
    store: ObjectStore, plan: SourcePlan, root: str, lo: str | None = None, hi: str | None = None
) -> AsyncIterator[ObjectInfo]:
    """The objects of `root` whose folder lies in [lo, hi), in key order, a page at a time."""
    sources: list[tuple[str, str | None, ObjectInfo | None]] = [
        (p, p, None) for p in plan.folders.get(root, [])
    ]
    sources += [(info.key, None, info) for info in plan.objects.get(root, [])]
    if root in plan.mixed_roots:
        sources += [(p, p, None) for p in plan.mixed]
    for _, prefix, single in sorted(sources, key=lambda source: source[0]):
        if single is not None:
            if _in_range(folder_of(single.key), lo, hi):
                yield single
            continue
        assert prefix is not None
        if hi is not None and prefix >= hi:
            continue
        mixed = prefix in plan.mixed
        async for page in store.list_pages(prefix, start_after=_start_after(prefix, lo)):
            for info in page.objects:
                folder = folder_of(info.key)
                if hi is not None and folder >= hi:
                    break
                if lo is not None and folder < lo:
                    continue
                if mixed and not _mixed_belongs(info.key, root, plan.window):
                    continue
                yield info
            else:
                continue
            break


def _mixed_belongs(key: str, root: str, window: Window) -> bool:
    day = key_date(key)
    return loose_unit(day) == root and (day is None or window.contains(day))


def _in_range(folder: str, lo: str | None, hi: str | None) -> bool:
    return (lo is None or folder >= lo) and (hi is None or folder < hi)
