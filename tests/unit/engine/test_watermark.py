"""The watermark: a lookback from real days only (none after today + 1); future days reported by a run."""

from __future__ import annotations

import asyncio
import datetime as dt

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import compact
from archiver.engine.listing import Window
from archiver.engine.watermark import FUTURE_MARGIN, Watermark
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore

TODAY = dt.date(2024, 8, 21)
SETTINGS = Settings(lookback_days=7, parse_workers=1, retire_grace_seconds=0)


def marker(day: dt.date) -> str:
    return ledger.watermark_key(day)


def test_an_explicit_window_is_taken_as_given_and_lists_nothing() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        settings = SETTINGS.with_window(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
        assert await Watermark(store, TODAY).window(settings) == Window(
            dt.date(2024, 1, 1), dt.date(2024, 1, 31)
        )
        assert store.counts.list == 0

    asyncio.run(scenario())


def test_without_markers_the_window_is_everything() -> None:
    async def scenario() -> None:
        assert await Watermark(MemoryStore(), TODAY).window(SETTINGS) == Window(None, None)

    asyncio.run(scenario())


def test_the_lookback_runs_from_the_newest_marker() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        store.add(marker(dt.date(2024, 8, 10)), b"")
        store.add(marker(dt.date(2024, 8, 20)), b"")
        assert await Watermark(store, TODAY).window(SETTINGS) == Window(dt.date(2024, 8, 13), None)

    asyncio.run(scenario())


def test_a_marker_in_the_future_says_nothing_and_the_window_is_everything() -> None:
    async def scenario() -> None:
        # GIVEN a marker at 2999-12-31 (an older version let a stray folder move it there)
        store = MemoryStore()
        store.add(marker(dt.date(2999, 12, 31)), b"")
        # THEN it names no real day: the run looks at everything, not at a week before tomorrow
        assert await Watermark(store, TODAY).window(SETTINGS) == Window(None, None)
        # AND beside a real marker, the real one decides
        store.add(marker(dt.date(2024, 3, 1)), b"")
        window = await Watermark(store, TODAY).window(SETTINGS)
        assert window == Window(dt.date(2024, 2, 23), None)

    asyncio.run(scenario())


def test_advance_takes_the_newest_day_up_to_tomorrow_and_drops_older_markers() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        store.add(marker(dt.date(2024, 8, 1)), b"")
        watermark = Watermark(store, TODAY)
        await watermark.window(SETTINGS)
        # WHEN a complete run covered days up to a stray 2999-12-31 and tomorrow
        await watermark.advance(
            [dt.date(2024, 8, 19), dt.date(2999, 12, 31), TODAY + FUTURE_MARGIN, dt.date(2024, 8, 20)]
        )
        # THEN the only marker is tomorrow's, the newest day that is not future
        assert store.keys(ledger.WATERMARK_ROOT) == [marker(TODAY + FUTURE_MARGIN)]

    asyncio.run(scenario())


def test_a_future_day_takes_no_part_when_the_newest_real_day_is_long_past() -> None:
    async def scenario() -> None:
        # GIVEN a replay whose newest real day is months before today, beside a stray 2999-12-31
        store = MemoryStore()
        watermark = Watermark(store, TODAY)
        await watermark.window(SETTINGS)
        # WHEN a complete run covered them
        await watermark.advance([dt.date(2024, 3, 1), dt.date(2999, 12, 31), dt.date(2024, 3, 2)])
        # THEN the marker is the newest real day, and the next lookback starts a week before it
        assert store.keys(ledger.WATERMARK_ROOT) == [marker(dt.date(2024, 3, 2))]
        assert await Watermark(store, TODAY).window(SETTINGS) == Window(dt.date(2024, 2, 24), None)
        # AND a run that covered only future days leaves the marker where it was
        await watermark.advance([dt.date(2999, 12, 31)])
        assert store.keys(ledger.WATERMARK_ROOT) == [marker(dt.date(2024, 3, 2))]

    asyncio.run(scenario())


def test_advance_to_a_past_day_and_with_no_days() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        watermark = Watermark(store, TODAY)
        await watermark.window(SETTINGS)
        await watermark.advance([])
        assert store.objects == {}
        await watermark.advance([dt.date(2024, 8, 19), dt.date(2024, 8, 20)])
        assert store.keys(ledger.WATERMARK_ROOT) == [marker(dt.date(2024, 8, 20))]

    asyncio.run(scenario())


def test_only_days_after_tomorrow_are_future() -> None:
    watermark = Watermark(MemoryStore(), TODAY)
    assert not watermark.is_future("day=2024-08-22")
    assert watermark.is_future("day=2024-08-23")
    assert watermark.is_future("loose=2999-12-31.1")
    assert not watermark.is_future("loose=undated")


def test_a_run_archives_and_reports_a_future_day_but_its_watermark_is_the_newest_real_day() -> None:
    async def scenario() -> None:
        # GIVEN a normal day and a stray folder dated 2999-12-31
        source, dest = MemoryStore(), MemoryStore()
        source.add(job_key("100"), job_body("100"))
        source.add(job_key("200", day=dt.date(2999, 12, 31)), job_body("200"))

        def clock() -> dt.datetime:
            return dt.datetime(2024, 8, 21, 12, 0, tzinfo=dt.UTC)

        # WHEN a complete run archives the source
        report = await compact(source, dest, SETTINGS, clock=clock)
        # THEN both are archived, the future day is reported, and the watermark is the normal day
        assert report.objects_archived == 2 and not report.failures
        assert report.future_days == ["day=2999-12-31"]
        assert report.as_dict()["future_days"] == ["day=2999-12-31"]
        assert dest.keys(ledger.WATERMARK_ROOT) == [marker(dt.date(2024, 8, 20))]
        # AND a later plain run looks back from it, so a new object of today is archived
        source.add(job_key("300", day=dt.date(2024, 8, 21)), job_body("300"))
        again = await compact(source, dest, SETTINGS, clock=clock)
        assert again.window == {"since": "2024-08-13", "until": None}
        assert again.objects_archived == 1
        assert dest.keys(ledger.WATERMARK_ROOT) == [marker(dt.date(2024, 8, 21))]

    asyncio.run(scenario())
