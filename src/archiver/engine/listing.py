"""Walk the source, listing as little as possible: days pruned by the window, roots streamed in key order.

Discovery lists `user_id/` with a delimiter to find each workspace's `jobs/`
folder, which is listed by one of the plans of `scans.py` (`ARCHIVER_LISTING`):
by folders (`recipe_id/` -> `YYYYMMDD/`, the day level starting after the
window's first day and stopping past its last), by one flat LIST per recipe, or
flat as a whole, seeking past keys outside the window. Outside the layout,
folders are descended a few levels looking for date folders (`YYYYMMDD` or
`YYYY-MM-DD`), pruned the same way; a deeper subtree is listed whole, its keys
sorted into roots by the date they hold.

After discovery, a root's objects are streamed in key order (optionally only a
key range of it), one page at a time, so a day of any size never has to be held
in memory; keys a flat plan listed are held already and served from memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from archiver.config import Settings
from archiver.engine.scans import (
    Holder,
    JobsCut,
    KeyBudget,
    Listing,
    OverBudgetError,
    scan_flat,
    scan_prefix,
)
from archiver.engine.units import day_unit, folder_of, key_date, loose_unit, root_date
from archiver.formats.layout import JOBS_FOLDER, parse_day
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


@dataclass(frozen=True, slots=True)
class ListingOptions:
    """How workspaces' `jobs/` folders are listed, and how many listed keys a run may hold."""

    choice: Listing = Listing.AUTO
    max_keys: int = 200_000

    @classmethod
    def of(cls, settings: Settings) -> ListingOptions:
        return cls(Listing(settings.listing), settings.listing_max_keys)


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
    listing: dict[str, int] = field(default_factory=dict)
    """How many workspace `jobs/` folders each plan listed (`folders`, `prefix`, `flat`)."""

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

    def __init__(self, store: ObjectStore, window: Window, options: ListingOptions) -> None:
        self.store = store
        self.window = window
        self.options = options
        self.budget = KeyBudget(options.max_keys)
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

    def cut(self, jobs_prefix: str) -> JobsCut:
        return JobsCut(jobs_prefix, self.window.since, self.window.until)

    async def list_jobs(self, jobs_prefix: str) -> None:
        """A workspace's `jobs/` folder, by the plan the options name (`auto` is flat)."""
        choice = self.options.choice
        if choice is not Listing.FOLDERS:
            cut = self.cut(jobs_prefix)
            holder = Holder(cut, self.budget, lambda info: self.in_window(cut, info))
            try:
                if choice is Listing.PREFIX:
                    await scan_prefix(self.store, holder, bounded)
                else:
                    await scan_flat(self.store, holder)
            except OverBudgetError:
                log.info("%s holds more keys than ARCHIVER_LISTING_MAX_KEYS: listed by folders", jobs_prefix)
            else:
                for info in holder.held:
                    self.plan.objects[_jobs_root(cut, info.key)].append(info)
                self._chose(Listing.PREFIX if choice is Listing.PREFIX else Listing.FLAT)
                return
        level = await _list_level(self.store, jobs_prefix)
        for info in level.objects:
            self.add_object(info)
        await bounded(self.list_days(jobs_prefix, recipe) for recipe in level.prefixes)
        self._chose(Listing.FOLDERS)

    def _chose(self, choice: Listing) -> None:
        self.plan.listing[choice.value] = self.plan.listing.get(choice.value, 0) + 1

    def in_window(self, cut: JobsCut, info: ObjectInfo) -> bool:
        """Whether a key a flat plan listed (inside the cuts already) belongs to a root of the window."""
        day = root_date(_jobs_root(cut, info.key))
        return day is None or self.window.contains(day)

    async def list_days(self, jobs_prefix: str, recipe_prefix: str) -> None:
        """A recipe's day folders between the window's cuts (and anything else a tool put between them)."""
        cut = self.cut(jobs_prefix)
        async for page in self.store.list_pages(
            recipe_prefix, delimiter="/", start_after=cut.start_after(recipe_prefix)
        ):
            past = False
            for info in page.objects:
                if cut.inside(info.key[len(recipe_prefix) :]):
                    self.add_object(info)
                else:
                    past = True
            for sub in page.prefixes:
                name = sub[len(recipe_prefix) :]
                if not cut.inside(name):
                    past = True
                    continue
                day = parse_day(name[:-1])
                if day is None:
                    self.plan.mixed.append(sub)
                elif self.window.contains(day):
                    self.plan.folders[day_unit(day)].append(sub)
            if past:
                break  # every later page lies past the window's last day too


def _jobs_root(cut: JobsCut, key: str) -> str:
    """The root of a key under a workspace's `jobs/` folder: its day folder's day, else loose by its date."""
    parts = cut.split(key)
    if parts is not None:
        name, slash, _ = parts[1].partition("/")
        day = parse_day(name) if slash else None
        if day is not None:
            return day_unit(day)
    return loose_unit(key_date(key))


async def plan_source(
    store: ObjectStore, window: Window, options: ListingOptions | None = None
) -> SourcePlan:
    """Discover the roots in the window and where their keys are, listing as little as possible."""
    plan = await _Discovery(store, window, options or ListingOptions()).run()
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
