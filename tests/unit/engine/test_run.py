"""A run over fake stores: unit failures as results, time boxes, seen markers, compact_keys, late cleanup."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import compact, compact_keys
from archiver.engine.units import UnitScope
from archiver.storage.store import Fetched, ListPage, RequestCounts
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore

D19, D20 = dt.date(2024, 8, 19), dt.date(2024, 8, 20)
SETTINGS = Settings(parse_workers=1, retire_grace_seconds=0)


def clock() -> dt.datetime:
    return dt.datetime(2024, 8, 21, 12, 0, tzinfo=dt.UTC)


def two_days(source: MemoryStore) -> None:
    for day in (D19, D20):
        for job in ("100", "101", "102"):
            source.add(job_key(job, day=day), job_body(job))


def seen_markers(dest: MemoryStore, unit: str) -> list[str]:
    return dest.keys(ledger.seen_key(unit, ""))


def test_a_failing_unit_is_a_result_and_the_others_commit() -> None:
    async def scenario() -> None:
        # GIVEN two days, one of which has a garbled ledger head
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        dest.add(ledger.head_key("day=2024-08-19"), b"{garbled")
        # WHEN a run archives everything
        report = await compact(source, dest, SETTINGS, clock=clock)
        # THEN the broken day fails with a one-line reason, the other day commits
        assert report.failed_units == ["day=2024-08-19"]
        (failure,) = report.failures
        assert failure["kind"] == "LedgerFormatError" and "\n" not in failure["error"]
        assert report.objects_archived == 3 and report.units_committed == 1
        # AND only the good day is marked seen, and the watermark does not move
        assert seen_markers(dest, "day=2024-08-20") and not seen_markers(dest, "day=2024-08-19")
        assert dest.keys(ledger.WATERMARK_ROOT) == []

    asyncio.run(scenario())


def test_a_rerun_of_an_archived_source_costs_lists_only() -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        first = await compact(source, dest, SETTINGS, clock=clock)
        assert first.objects_archived == 6 and dest.keys(ledger.WATERMARK_ROOT)
        source.counts = dest.counts = RequestCounts()  # as a fresh process (or Lambda invocation) starts
        again = await compact(source, dest, SETTINGS, clock=clock)
        assert again.objects_archived == 0 and again.objects_skipped == 6
        assert again.requests["get"] == again.requests["put"] == again.requests["delete"] == 0
        assert again.requests["list"] > 0

    asyncio.run(scenario())


class ListLog(MemoryStore):
    """A MemoryStore that remembers the prefix of every LIST request."""

    def __init__(self) -> None:
        super().__init__(page_size=100)
        self.listed: list[str] = []

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        async for page in super().list_pages(prefix, delimiter=delimiter, start_after=start_after):
            self.listed.append(prefix)
            yield page


def data_lists(dest: ListLog) -> list[str]:
    return [prefix for prefix in dest.listed if prefix.split("/")[0] in ("jobs", "job_lines", "quarantine")]


def test_a_run_lists_its_days_data_folders_once_and_its_markers_match_a_fresh_listing() -> None:
    async def scenario() -> None:
        # GIVEN ten days of three jobs each
        source, dest = MemoryStore(), ListLog()
        for day in range(10, 20):
            for job in ("100", "101", "102"):
                source.add(job_key(job, day=dt.date(2024, 8, day)), job_body(job))
        # WHEN a run archives them, then a run with nothing new
        first = await compact(source, dest, SETTINGS, clock=clock)
        first_lists = data_lists(dest)
        dest.listed.clear()
        source.counts, dest.counts = RequestCounts(), RequestCounts()
        again = await compact(source, dest, SETTINGS, clock=clock)
        # THEN each run listed the data folders once each (not three prefixes a day), before its commits
        assert first.objects_archived == 30
        assert sorted(first_lists) == sorted(data_lists(dest)) == ["job_lines/", "jobs/", "quarantine/"]
        # AND the markers the first run made from that listing and its own commits match what the
        # rerun lists: every day of its window (the lookback) is skipped, with no GET or PUT
        assert again.objects_archived == 0 and again.objects_skipped == again.objects_listed > 3
        assert again.requests["get"] == again.requests["put"] == 0

    asyncio.run(scenario())


def test_a_day_of_one_unit_is_marked_seen_without_a_settled_marker() -> None:
    async def scenario() -> None:
        # GIVEN two days of three jobs, each day one unit
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        # WHEN a run archives them
        await compact(source, dest, SETTINGS, clock=clock)
        # THEN each day has its seen marker, and no settled marker: the seen marker says as much, a PUT less
        for unit in ("day=2024-08-19", "day=2024-08-20"):
            assert seen_markers(dest, unit)
            assert not dest.keys(ledger.settled_key(unit, ""))

    asyncio.run(scenario())


def test_a_data_file_deleted_while_the_run_goes_on_is_found_by_the_next_run() -> None:
    async def scenario() -> None:
        # GIVEN a day archived once
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        await compact(source, dest, SETTINGS, clock=clock)
        (lines,) = dest.keys("job_lines/date=2024-08-19/")
        # WHEN a new job arrives that day, and the day's lines file is deleted by mistake while the run
        # commits it (after the run listed the archive, before it marks the day seen)
        source.add(job_key("103", day=D19), job_body("103"))

        async def delete_lines(key: str) -> None:
            if key == ledger.head_key("day=2024-08-19") and lines in dest.objects:
                del dest.objects[lines]

        dest.before_put = delete_lines
        second = await compact(source, dest, SETTINGS, clock=clock)
        dest.before_put = None
        assert second.objects_archived == 1 and lines not in dest.objects
        # THEN the next run does not take the day for done: it finds the file gone and writes its rows again
        third = await compact(source, dest, SETTINGS, clock=clock)
        assert lines in third.missing_files
        assert third.objects_archived == 3

    asyncio.run(scenario())


def test_out_of_time_no_unit_starts_and_the_report_names_what_is_left() -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        report = await compact(source, dest, SETTINGS, clock=clock, time_left=lambda: 1.0)
        assert sorted(report.units_left) == ["day=2024-08-19", "day=2024-08-20"]
        assert report.units_committed == 0 and report.objects_archived == 0
        assert not dest.keys(ledger.LEDGER_ROOT) and not dest.keys(ledger.WATERMARK_ROOT)

    asyncio.run(scenario())


def test_a_unit_scope_archives_its_day_only_and_never_moves_the_watermark() -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        report = await compact(source, dest, SETTINGS, scope=UnitScope(unit="day=2024-08-20"), clock=clock)
        assert report.objects_archived == 3 and report.window == {
            "since": "2024-08-20",
            "until": "2024-08-20",
        }
        assert not dest.keys(ledger.unit_prefix("day=2024-08-19"))
        assert dest.keys(ledger.WATERMARK_ROOT) == []

    asyncio.run(scenario())


def test_compact_keys_archives_named_keys_and_skips_gone_and_foreign_ones() -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        two_days(source)
        keys = [job_key("100", day=D20), job_key("100", day=D20), job_key("999"), "5234/notes.txt"]
        report = await compact_keys(source, dest, SETTINGS, keys, clock=clock)
        assert report.objects_archived == 1 and report.objects_skipped == 3
        assert report.requests["list"] == 2  # the erasure log and the root's ledger, never the source
        # AND a later full run archives the rest once, the named key not again
        full = await compact(source, dest, SETTINGS, clock=clock)
        assert full.objects_archived == 5

    asyncio.run(scenario())


def test_compact_keys_reads_objects_their_events_described_with_a_get_alone() -> None:
    async def scenario() -> None:
        # GIVEN three objects announced by events that carried their size and ETag, one since deleted
        source, dest = MemoryStore(), MemoryStore()
        infos = [source.add(job_key(job, day=D20), job_body(job)) for job in ("100", "101", "102")]
        del source.objects[infos[2].key]
        # WHEN the events' objects are archived
        report = await compact_keys(source, dest, SETTINGS, [], described=infos, clock=clock)
        # THEN no source HEAD was made: one GET each, the deleted one's 404 counted as skipped
        assert report.by_store["source"]["head"] == 0 and report.by_store["source"]["get"] == 3
        assert (report.objects_archived, report.objects_skipped, report.failures) == (2, 1, [])
        # AND a listing run finds both archived under their ETags
        full = await compact(source, dest, SETTINGS, clock=clock)
        assert (full.objects_archived, full.objects_skipped) == (0, 2)

    asyncio.run(scenario())


def test_a_stale_event_about_a_replaced_version_changes_nothing() -> None:
    async def scenario() -> None:
        # GIVEN an object archived, then replaced by a new version that is archived too
        source, dest = MemoryStore(), MemoryStore()
        key = job_key("100", day=D20)
        stale = source.add(key, job_body("100", status="running"))
        await compact_keys(source, dest, SETTINGS, [], described=[stale], clock=clock)
        current = source.add(key, job_body("100"))
        await compact_keys(source, dest, SETTINGS, [], described=[current], clock=clock)
        files = sorted(dest.keys("jobs/"))
        # WHEN the first version's event is delivered again (an SQS retry, out of order)
        source.counts, dest.counts = RequestCounts(), RequestCounts()
        again = await compact_keys(source, dest, SETTINGS, [], described=[stale], clock=clock)
        # THEN one HEAD finds the archived version current: no GET, nothing written
        assert again.by_store["source"]["head"] == 1 and again.by_store["source"]["get"] == 0
        assert again.requests["put"] == 0 and again.objects_skipped == 1
        assert sorted(dest.keys("jobs/")) == files

    asyncio.run(scenario())


def named_by_heads(dest: MemoryStore) -> set[str]:
    named: set[str] = set()
    for key in dest.keys(ledger.LEDGER_ROOT):
        if key.endswith(ledger.HEAD_NAME):
            head = ledger.decode_head(dest.body(key))
            named |= head.file_keys() | head.ledger_keys()
    return named


def test_event_batches_without_sweep_find_units_by_their_heads_and_a_compact_sweeps_crash_leftovers() -> None:
    async def scenario() -> None:
        # GIVEN a day split into units of at most 6 objects, archived from events
        source, dest = MemoryStore(), MemoryStore()
        settings = Settings(parse_workers=1, retire_grace_seconds=0, unit_max_objects=6)
        first = [source.add(job_key(str(100 + n)), job_body(str(100 + n))) for n in range(10)]
        await compact_keys(source, dest, settings, [], described=first, clock=clock)
        assert len([key for key in dest.keys(ledger.LEDGER_ROOT) if key.endswith(ledger.HEAD_NAME)]) > 1
        # ... and a batch whose commit crashed after its uploads (its head write never happened)
        doomed = source.add(job_key("200"), job_body("200"))

        async def crash(key: str) -> None:
            if key.endswith(ledger.HEAD_NAME):
                raise RuntimeError("killed")

        dest.before_put = crash
        await compact_keys(source, dest, settings, [], described=[doomed], clock=clock)
        dest.before_put = None
        leftovers = {key for key in dest.objects if key.endswith(".parquet")} - named_by_heads(dest)
        assert leftovers
        # WHEN the next batch of first deliveries is archived without a sweep
        dest.counts = RequestCounts()
        later = source.add(job_key("300"), job_body("300"))
        batch = await compact_keys(
            source, dest, settings, [], described=[later, doomed], sweep=False, clock=clock
        )
        # THEN it lists nothing of the archive and routes through the split it read from the heads
        assert batch.by_store["dest"]["list"] == 0
        assert batch.objects_archived == 2 and not batch.failures
        # AND the crash's leftovers wait for a run that lists the ledger: a compact of the day removes them
        assert leftovers <= set(dest.objects)
        await compact(source, dest, settings, clock=clock)
        assert not leftovers & set(dest.objects)
        assert {key for key in dest.objects if key.endswith(".parquet")} <= named_by_heads(dest)

    asyncio.run(scenario())


def test_an_off_layout_key_in_a_day_folder_is_archived_once_by_events_then_listing() -> None:
    async def scenario() -> None:
        # GIVEN a JSON export dropped inside a layout day folder
        source, dest = MemoryStore(), MemoryStore()
        key = "5234/jobs/77/20240820/export.json"
        source.add(key, job_body("555"))
        # WHEN an S3 event archives it, then the nightly run lists the day
        by_event = await compact_keys(source, dest, SETTINGS, [key], clock=clock)
        nightly = await compact(source, dest, SETTINGS, clock=clock)
        # THEN it was archived once, in the day's unit: one jobs file, no loose unit
        assert (by_event.objects_archived, nightly.objects_archived) == (1, 0)
        assert len(dest.keys("jobs/")) == 1
        assert not dest.keys(ledger.unit_prefix("loose=2024-08-20"))

    asyncio.run(scenario())


def test_retired_files_wait_out_the_grace_period_then_a_later_run_deletes_them() -> None:
    async def scenario() -> None:
        # GIVEN a 10-minute grace period and a job whose winner changes, retiring its first files
        source, dest = MemoryStore(), MemoryStore()
        settings = Settings(parse_workers=1, retire_grace_seconds=600)
        source.add(job_key("100", stamp="101500", status="running"), job_body("100", status="running"))
        await compact(source, dest, settings, clock=clock)
        first_markers = seen_markers(dest, "day=2024-08-20")
        source.add(job_key("100", stamp="101600"), job_body("100"))
        second = await compact(source, dest, settings, clock=clock)
        head = ledger.decode_head(dest.body(ledger.head_key("day=2024-08-20")))
        retired = {item.key for item in head.retired}
        assert retired and retired <= set(dest.objects)
        # THEN the root is not marked seen anew while files wait, so a later run comes back for them
        assert second.files_deleted == 0
        assert seen_markers(dest, "day=2024-08-20") == first_markers

        def later() -> dt.datetime:
            return clock() + dt.timedelta(minutes=11)

        # WHEN a run after the grace period finds nothing new
        third = await compact(source, dest, settings, clock=later)
        # THEN the retired files are deleted and the root is marked seen at last
        assert third.files_deleted == len(retired)
        assert not retired & set(dest.objects)
        (marker,) = seen_markers(dest, "day=2024-08-20")
        assert [marker] != first_markers
        assert third.objects_archived == 0

    asyncio.run(scenario())


def test_new_objects_in_a_split_day_read_only_the_index_of_the_unit_they_join() -> None:
    async def scenario() -> None:
        # GIVEN a day of 60 jobs split into units of at most 10, archived once
        source, dest = MemoryStore(page_size=100), MemoryStore(page_size=100)
        for number in range(60):
            job = str(1000 + number)
            source.add(job_key(job), job_body(job))
        settings = Settings(parse_workers=1, retire_grace_seconds=0, unit_max_objects=10)
        first = await compact(source, dest, settings, clock=clock)
        units = {key.split("/")[2] for key in dest.keys(ledger.LEDGER_ROOT) if key.endswith(ledger.HEAD_NAME)}
        assert first.objects_archived == 60 and len(units) > 5
        # WHEN one new job arrives and the day is archived again
        source.add(job_key("1030x"), job_body("1030x"))
        reads: list[str] = []
        original_get = dest.get

        async def counting_get(key: str):  # type: ignore[no-untyped-def]
            reads.append(key)
            return await original_get(key)

        dest.get = counting_get  # type: ignore[method-assign]
        second = await compact(
            source, dest, Settings(parse_workers=1, unit_max_objects=10, since=D20), clock=clock
        )
        # THEN it archived the one job, and read the index of one unit only (settled units are skipped)
        assert second.objects_archived == 1
        segments_read = {key.split("/")[2] for key in reads if "/index-" in key}
        assert len(segments_read) == 1, segments_read
        # AND a rerun with nothing new reads no index at all
        reads.clear()
        third = await compact(
            source, dest, Settings(parse_workers=1, unit_max_objects=10, since=D20), clock=clock
        )
        assert third.objects_archived == 0 and not [key for key in reads if "/index-" in key]

    asyncio.run(scenario())


class GetLog(MemoryStore):
    """A MemoryStore that remembers the key of every GET."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    async def get(self, key: str) -> Fetched:
        self.gets.append(key)
        return await super().get(key)


def test_a_commit_that_merges_segments_does_not_read_them_again_as_leftovers() -> None:
    async def scenario() -> None:
        # GIVEN a unit committed three times, one job each: three segments of one size tier
        source, dest = MemoryStore(), GetLog()
        for job in ("100", "101", "102"):
            info = source.add(job_key(job, day=D20), job_body(job))
            await compact_keys(source, dest, SETTINGS, [], described=[info], clock=clock)
        head = ledger.decode_head(dest.body(ledger.head_key("day=2024-08-20")))
        older = {segment.key for segment in head.segments}
        assert len(older) == 3
        # WHEN a fourth commit merges them into its own segment
        dest.gets.clear()
        info = source.add(job_key("103", day=D20), job_body("103"))
        await compact_keys(source, dest, SETTINGS, [], described=[info], clock=clock)
        # THEN each merged-away segment was read once (to build the index), not again as a leftover
        head = ledger.decode_head(dest.body(ledger.head_key("day=2024-08-20")))
        assert len(head.segments) == 1 and not older & set(dest.objects)
        assert sorted(key for key in dest.gets if key in older) == sorted(older)

    asyncio.run(scenario())
