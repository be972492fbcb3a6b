"""Listing a workspace's `jobs/` folder without a LIST per day folder: the plans, and the window's cut.

A workspace's keys sort by recipe, then day, then job. Three plans list the part of
`USER/jobs/` a window needs:

- `folders`: a LIST of each recipe's day folders, then a LIST of each day folder in
  the window (streamed at archive time, nothing held);
- `prefix`: one LIST per recipe folder, starting at the window's first day and
  stopping past its last (pages of 1,000 keys across days);
- `flat`: one LIST of the whole `jobs/` folder, page after page; where a page ends on
  keys outside the window (old days of a recipe, or days past the window's last),
  the next page starts where the window goes on, so it never costs more than a plain
  flat listing and skips deep histories.

Every plan sees exactly the keys `JobsCut.keeps` accepts, so the choice changes what a
run costs, never what it archives. `prefix` and `flat` hold the keys they list (about
400 bytes each) until the run has archived them, within `ARCHIVER_LISTING_MAX_KEYS`;
a workspace that would need more is listed by folders instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from archiver.formats.layout import format_day
from archiver.storage.store import ObjectInfo, ObjectStore

SKIP_REST = "\U0010ffff"
"""Sorts after every character a key can hold: `RECIPE/` + this is past every key of the recipe."""


class Listing(StrEnum):
    """How a workspace's `jobs/` folder is listed (`ARCHIVER_LISTING`)."""

    AUTO = "auto"
    FOLDERS = "folders"
    PREFIX = "prefix"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class JobsCut:
    """Which keys under a workspace's `jobs/` folder a window lists, by the key alone.

    Inside a recipe folder, names that sort at or before the day before the window
    (`<since-1>0`) or at or after the day after it are outside the window, whatever
    they are (day folders, or anything else a tool put there): every plan skips them
    with StartAfter or by stopping, as a walk of day folders always has. What is left
    is kept when its root's date is in the window (`in_window`).
    """

    jobs_prefix: str
    since: dt.date | None
    until: dt.date | None

    @property
    def low(self) -> str | None:
        return None if self.since is None else format_day(self.since - dt.timedelta(days=1)) + "0"

    @property
    def high(self) -> str | None:
        return None if self.until is None else format_day(self.until + dt.timedelta(days=1))

    def split(self, key: str) -> tuple[str, str] | None:
        """(recipe folder, name inside it) of a key, None for an object directly in `jobs/`."""
        recipe, slash, name = key[len(self.jobs_prefix) :].partition("/")
        return (self.jobs_prefix + recipe + "/", name) if slash else None

    def inside(self, name: str) -> bool:
        """Whether a name inside a recipe folder lies between the window's cuts."""
        low, high = self.low, self.high
        return (low is None or name > low) and (high is None or name < high)

    def start_after(self, recipe_prefix: str) -> str | None:
        low = self.low
        return None if low is None else recipe_prefix + low

    def seek(self, last: str) -> str | None:
        """Where a flat listing that just listed `last` goes on, if it can skip keys outside the window."""
        parts = self.split(last)
        if parts is None:
            return None
        recipe_prefix, name = parts
        low, high = self.low, self.high
        if low is not None and name < low:
            return recipe_prefix + low
        if high is not None and name >= high and not name.startswith(SKIP_REST):
            return recipe_prefix + SKIP_REST
        return None


class KeyBudget:
    """How many listed keys every `prefix` and `flat` listing of a run may hold together."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, count: int) -> bool:
        if count > self.left:
            return False
        self.left -= count
        return True

    def give_back(self, count: int) -> None:
        self.left += count


class OverBudgetError(Exception):
    """A listing would hold more keys than the budget leaves (internal: that workspace goes by folders)."""


class Holder:
    """The keys one listing keeps, counted against the run's budget as they come."""

    def __init__(self, cut: JobsCut, budget: KeyBudget, keeps: Callable[[ObjectInfo], bool]) -> None:
        self.cut = cut
        self.budget = budget
        self.keeps = keeps
        self.held: list[ObjectInfo] = []

    def add(self, info: ObjectInfo) -> None:
        if not self.keeps(info):
            return
        if not self.budget.take(1):
            self.release()
            raise OverBudgetError(self.cut.jobs_prefix)
        self.held.append(info)

    def release(self) -> None:
        self.budget.give_back(len(self.held))
        self.held = []


async def scan_flat(store: ObjectStore, holder: Holder) -> None:
    """One LIST of the whole `jobs/` folder, page after page, seeking past keys outside the window."""
    cut = holder.cut
    start_after: str | None = None
    while True:
        seek: str | None = None
        async for page in store.list_pages(cut.jobs_prefix, start_after=start_after):
            for info in page.objects:
                if (parts := cut.split(info.key)) is None or cut.inside(parts[1]):
                    holder.add(info)
            if page.objects and not page.last and (seek := cut.seek(page.objects[-1].key)) is not None:
                break
        if seek is None:
            return
        start_after = seek


async def scan_prefix(
    store: ObjectStore,
    holder: Holder,
    bounded: Callable[[list[Coroutine[Any, Any, None]]], Coroutine[Any, Any, None]],
) -> None:
    """One LIST of the recipe folders, then one LIST per recipe from the window's first day to its last."""
    cut = holder.cut
    recipes: list[str] = []
    async for page in store.list_pages(cut.jobs_prefix, delimiter="/"):
        for info in page.objects:
            holder.add(info)
        recipes.extend(page.prefixes)
    await bounded([_scan_recipe(store, holder, recipe) for recipe in recipes])


async def _scan_recipe(store: ObjectStore, holder: Holder, recipe_prefix: str) -> None:
    cut = holder.cut
    async for page in store.list_pages(recipe_prefix, start_after=cut.start_after(recipe_prefix)):
        for info in page.objects:
            if not cut.inside(info.key[len(recipe_prefix) :]):
                return  # past the window's last day: the rest of the recipe is too
            holder.add(info)
