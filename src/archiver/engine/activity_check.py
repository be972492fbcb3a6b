"""A run's check of the activity ledgers of its window: data files deleted or damaged are rebuilt.

The `activity` table's files belong to the per-day activity ledgers, not to the units
a run routes, so a run checks them on its own, before its units (which may rewrite
those files). A day whose ledger objects and data files are as its `seen-` marker
recorded is skipped from the two LISTs every run makes (no GET, no PUT). Another day's
head is read, and every file it names must be in the archive with the size it was
committed with. A file missing or of another size is damaged: the ledger rebuilds the
rows it held from the copies that can be read again (`ActivityLedger.repair`); events
no copy gives back are a failure of the run naming the file. A day is checked by the
shard that archives the stream's objects of that day (`loose=DAY`); after the units,
the days the run committed to are checked again and marked, so a rerun with nothing
new skips them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from archiver.engine import ledger
from archiver.engine.activity import ACTIVITY_ROOT, activity_unit
from archiver.engine.context import RunContext
from archiver.engine.index import read_head
from archiver.engine.ledger import Head
from archiver.engine.listing import Window
from archiver.engine.units import loose_unit, root_date
from archiver.engine.writer import read_day_partition
from archiver.errors import ArchiverError, NotFoundError
from archiver.formats.layout import parse_key
from archiver.formats.normalize import read_object
from archiver.formats.records import Row
from archiver.storage.store import ObjectInfo

DATA_PREFIX = "activity/date="

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Day:
    """What the LISTs say of one day's activity: its head's ETag, its markers, its files' sizes."""

    head_etag: str | None = None
    markers: set[str] = field(default_factory=set)
    ledger_keys: set[str] = field(default_factory=set)
    """Its ledger's other objects: every commit adds a segment named after it (a copy keeps the names)."""
    files: dict[str, int] = field(default_factory=dict)

    def add_ledger_object(self, info: ObjectInfo) -> None:
        name = info.key.rsplit("/", 1)[-1]
        if name == ledger.HEAD_NAME:
            self.head_etag = info.etag
        if name.startswith(ledger.SEEN_PREFIX):
            self.markers.add(info.key)
        else:
            self.ledger_keys.add(info.key)

    def digest(self) -> str:
        """A seen marker's name: the ledger's objects joined with the data files' names and sizes."""
        keys = ledger.listing_fingerprint((key, "") for key in sorted(self.ledger_keys))
        data = ledger.listing_fingerprint((key, str(size)) for key, size in sorted(self.files.items()))
        return ledger.seen_digest(keys, data)


class ActivityCheck:
    """Checks (and repairs) the activity ledgers of the days a run covers."""

    def __init__(self, ctx: RunContext, window: Window, accepts_root: Callable[[str], bool]) -> None:
        self.ctx = ctx
        self.window = window
        self.accepts_root = accepts_root

    async def run(self) -> None:
        """Before the units: check every day of the window, so units never rewrite a damaged file."""
        days = await self._ledgers()
        await self._data_files(days, self.window.since)
        for day, listed in sorted(days.items()):
            await self._check_day(day, listed)

    async def recheck(self) -> None:
        """After the units: the days this run committed to, so an unchanged rerun skips them."""
        for unit in sorted(self.ctx.activity.published):
            day = root_date(unit)
            if day is not None:
                await self._check_day(day, None)

    async def _check_day(self, day: dt.date, listed: _Day | None) -> None:
        try:
            await self._check(day, listed or await self._relist(day))
        except (ArchiverError, OSError, ValueError) as error:  # one day's failure, never the run's
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            failure = {"unit": activity_unit(day), "error": message, "kind": type(error).__name__}
            self.ctx.report.failures.append(failure)

    async def _ledgers(self) -> dict[dt.date, _Day]:
        """The window's activity ledgers this run checks, with their heads' ETags and markers."""
        prefix = f"{ledger.LEDGER_ROOT}{ACTIVITY_ROOT}"
        since = self.window.since
        days: dict[dt.date, _Day] = {}
        start = f"{prefix}{since - dt.timedelta(days=1)}~" if since else None
        async for page in self.ctx.dest.list_pages(prefix, start_after=start):
            for info in page.objects:
                day = root_date(info.key[len(ledger.LEDGER_ROOT) :].split("/", 1)[0])
                if day is not None and self._past(day):
                    return _with_head(days)
                if day is not None and self.window.contains(day) and self.accepts_root(loose_unit(day)):
                    days.setdefault(day, _Day()).add_ledger_object(info)
        return _with_head(days)

    def _past(self, day: dt.date) -> bool:
        """Keys are listed in date order: past the window's last day, the rest is not the run's."""
        return self.window.until is not None and day > self.window.until

    async def _data_files(self, days: dict[dt.date, _Day], since: dt.date | None) -> None:
        """The sizes of the activity files of those days (one LIST from the window's first day)."""
        if not days:
            return
        start = f"{DATA_PREFIX}{since - dt.timedelta(days=1)}~" if since else None
        async for page in self.ctx.dest.list_pages(DATA_PREFIX, start_after=start):
            for info in page.objects:
                day = read_day_partition(info.key)
                if day is not None and self._past(day):
                    return
                if day is not None and day in days and info.key.endswith(".parquet"):
                    days[day].files[info.key] = info.size

    async def _check(self, day: dt.date, listed: _Day) -> None:
        unit = activity_unit(day)
        if ledger.seen_key(unit, listed.digest()) in listed.markers:
            return
        for _ in range(3):  # check; after a repair (or a rival's commit), check the new head
            head, etag = await self._head(unit, listed)
            if head is None:
                return
            if etag != listed.head_etag:
                listed = await self._relist(day)
                if etag != listed.head_etag:
                    continue  # it moved again: the listing must be at least as new as the head
            missing, resized = ledger.absent_or_damaged(head.files, listed.files)
            damaged = missing | resized
            if not damaged:
                await self._mark(unit, listed)
                return
            log.info("%s: %d activity data files missing or damaged; repairing", unit, len(damaged))
            self.ctx.report.missing_files.extend(sorted(damaged))
            lost = await self.ctx.activity.repair(day, damaged, self._reread, self.ctx.now_us)
            if lost:
                self.ctx.report.failures.append(_lost(unit, day, damaged, lost))

    async def _head(self, unit: str, listed: _Day) -> tuple[Head | None, str | None]:
        """The day's head: the one this run committed last if it is still the listed one, else read."""
        head, etag = self.ctx.activity.published.get(unit, (None, None))
        if head is not None and etag is not None and etag == listed.head_etag:
            return head, etag
        return await read_head(self.ctx.dest, unit)

    async def _relist(self, day: dt.date) -> _Day:
        """The day listed again, after its head moved since the run's LISTs (a commit in between)."""
        listed = _Day()
        async for page in self.ctx.dest.list_pages(ledger.unit_prefix(activity_unit(day))):
            for info in page.objects:
                listed.add_ledger_object(info)
        async for page in self.ctx.dest.list_pages(f"{DATA_PREFIX}{day.isoformat()}/"):
            listed.files.update((i.key, i.size) for i in page.objects if i.key.endswith(".parquet"))
        return listed

    async def _mark(self, unit: str, listed: _Day) -> None:
        """Record that the day's files are as its head says, so unchanged reruns skip it from LISTs."""
        marker = ledger.seen_key(unit, listed.digest())
        await self.ctx.dest.put(marker, b"")
        stale = sorted(listed.markers - {marker})
        if stale:
            await self.ctx.dest.delete(stale)
        listed.markers = {marker}

    async def _reread(self, key: str) -> list[Row] | None:
        """The activity rows a stream object holds now; None if it is gone."""
        try:
            fetched = await self.ctx.source.get(key)
        except NotFoundError:
            return None
        parsed = read_object(fetched.body, key=key, etag=fetched.etag, key_info=parse_key(key))
        return [event.row for event in parsed.activity]


def _with_head(days: dict[dt.date, _Day]) -> dict[dt.date, _Day]:
    """Days whose ledger has a head (a ledger that never committed has nothing to check)."""
    return {day: listed for day, listed in days.items() if listed.head_etag is not None}


def _lost(unit: str, day: dt.date, damaged: set[str], lost: list[str]) -> dict[str, str]:
    """The failure naming the damaged files and the copies of the events they held that none can restore."""
    more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
    error = (
        f"rows of {', '.join(sorted(damaged))} have no copy left to rebuild them from "
        f"({', '.join(lost[:3])}{more}); API events come back with "
        f"`archiver pull-activity DEST --since {day} --until {day}`"
    )
    return {"unit": unit, "error": error, "kind": "UnrepairableError"}
