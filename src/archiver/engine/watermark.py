"""The lookback: how far back a run without `--since` looks, from how far complete runs got.

Only a complete run (no window, no unit filter, nothing unread) advances the
watermark, so a crashed first run or a shard never makes later runs skip older
days. The watermark is the newest day at or before today (by the clock the run is
given) plus a small margin that a complete run covered: a stray future-dated day
folder is archived and reported, but takes no part in the watermark, so it can
neither push the lookback past days that have not happened yet nor hide the real
days of a source whose newest day lies in the past (a replay, a backfill).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.listing import Window
from archiver.engine.units import root_date
from archiver.storage.store import ObjectStore

FUTURE_MARGIN = dt.timedelta(days=1)


class Watermark:
    """Reads and advances `_archiver/complete/day=YYYY-MM-DD` markers."""

    def __init__(self, dest: ObjectStore, today: dt.date) -> None:
        self.dest = dest
        self.today = today
        self.keys: list[str] = []

    @property
    def limit(self) -> dt.date:
        return self.today + FUTURE_MARGIN

    def is_future(self, root: str) -> bool:
        day = root_date(root)
        return day is not None and day > self.limit

    async def window(self, settings: Settings) -> Window:
        """The explicit window; else a lookback from the newest day a complete run covered; else all."""
        if settings.since is not None:
            return Window(settings.since, settings.until)
        async for page in self.dest.list_pages(ledger.WATERMARK_ROOT):
            self.keys.extend(info.key for info in page.objects)
        # A marker past the limit (left by an older version) says nothing about real days.
        known = [day for day in map(_marker_day, self.keys) if day is not None and day <= self.limit]
        if not known:
            return Window(None, settings.until)
        return Window(max(known) - dt.timedelta(days=settings.lookback_days), settings.until)

    async def advance(self, days: list[dt.date]) -> None:
        """After a complete run over everything due: remember the newest of its days that are not future."""
        real = [day for day in days if day <= self.limit]
        if not real:
            return
        marker = ledger.watermark_key(max(real))
        if marker not in self.keys:
            await self.dest.put(marker, b"")
        stale = [key for key in self.keys if key != marker]
        if stale:
            await self.dest.delete(stale)


def _marker_day(key: str) -> dt.date | None:
    return root_date(key.rsplit("/", 1)[-1])


def narrowed(settings: Settings, day: dt.date) -> Settings:
    return replace(settings, since=day, until=day)
