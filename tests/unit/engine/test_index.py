"""A unit's source index: newest segment wins, reading it from the store, and which segments to merge."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from archiver.engine import ledger
from archiver.engine.index import (
    READ_ATTEMPTS,
    SEGMENT_FANOUT,
    UnitIndex,
    merge_segments,
    merged_entries,
    read_current,
    read_head,
    read_index,
    read_unit_index,
    segments_to_merge,
    tier,
)
from archiver.engine.ledger import Head, IndexEntry, LedgerFormatError, Outcome, SegmentRef
from archiver.engine.versions import rank_of
from archiver.errors import ArchiverError, NotFoundError
from tests.unit.engine.jobs import job_key
from tests.unit.engine.memory_store import MemoryStore

UNIT = "day=2024-08-20"
DAY = dt.date(2024, 8, 20)


def job_entry(
    key: str,
    etag: str,
    job: str,
    *,
    user: str = "5234",
    outcome: Outcome = Outcome.JOB,
    status: str = "succeeded",
) -> IndexEntry:
    files = ("jobs/date=2024-08-20/f.parquet",) if outcome is Outcome.JOB else ()
    rank = rank_of(status, 1, None, None, key)
    return IndexEntry(key, etag, 10, outcome, user_id=user, job_id=job, day=DAY, rank=rank, files=files)


def refs(*sizes: int) -> list[SegmentRef]:
    return [SegmentRef(f"s{i}", size) for i, size in enumerate(sizes)]


def test_the_newest_segment_mentioning_a_key_holds_its_whole_set_of_entries() -> None:
    # GIVEN an old segment where key A described two jobs, and a newer one where it describes one
    a, b = job_key("100"), job_key("200")
    old = [job_entry(a, '"1"', "100"), job_entry(a, '"1"', "101"), job_entry(b, '"1"', "200")]
    new = [job_entry(a, '"2"', "100")]
    # WHEN they are merged oldest first
    merged = merge_segments([old, new])
    # THEN A's set is the newer one alone (job 101 is not kept from the older set) and B stays
    assert [(e.etag, e.job_id) for e in merged[a]] == [('"2"', "100")]
    assert [(e.etag, e.job_id) for e in merged[b]] == [('"1"', "200")]


def test_unit_index_keys_jobs_by_workspace_and_job_id() -> None:
    # GIVEN two workspaces whose job ids are both 100, and a superseded version of one of them
    mine = job_key("100", user_id="5234")
    theirs = job_key("100", user_id="6000")
    older = job_key("100", user_id="5234", stamp="090000", status="running")
    index = UnitIndex(
        by_key=merge_segments(
            [
                [
                    job_entry(mine, '"m"', "100", user="5234"),
                    job_entry(theirs, '"t"', "100", user="6000"),
                    job_entry(older, '"o"', "100", user="5234", outcome=Outcome.SUPERSEDED, status="running"),
                ]
            ]
        )
    )
    # THEN there are two winners, and the old version counts as a version of the first only
    assert set(index.winners()) == {("5234", "100"), ("6000", "100")}
    assert index.winners()[("5234", "100")].key == mine
    assert sorted(e.key for e in index.versions()[("5234", "100")]) == sorted([mine, older])
    assert [e.key for e in index.versions()[("6000", "100")]] == [theirs]
    # AND the index answers by key
    assert len(index) == 3 and mine in index and "nope.json" not in index
    assert index.etag(theirs) == '"t"' and index.etag("nope.json") is None and index.get("nope.json") == []
    assert index.folders() == {
        "5234/jobs/77/20240820/100/5234-77-100-",
        "6000/jobs/77/20240820/100/6000-77-100-",
    }


def test_read_head_and_index_from_the_store() -> None:
    async def scenario() -> None:
        # GIVEN a head with two segments in the store
        store = MemoryStore()
        a = job_key("100")
        seg1, seg2 = ledger.segment_key(UNIT, 1, "aa"), ledger.segment_key(UNIT, 2, "bb")
        store.add(seg1, ledger.encode_index([job_entry(a, '"1"', "100")]))
        store.add(seg2, ledger.encode_index([job_entry(a, '"2"', "100")]))
        head = Head(UNIT, generation=2, segments=[SegmentRef(seg1, 1), SegmentRef(seg2, 1)])
        store.add(ledger.head_key(UNIT), ledger.encode_head(head))
        # WHEN the head and its index are read
        read, etag = await read_head(store, UNIT)
        assert read is not None
        index = await read_index(store, read)
        # THEN the head comes with its ETag, and the newer segment wins for the key
        assert read == head and etag == store.info(ledger.head_key(UNIT)).etag
        assert index.etag(a) == '"2"'
        assert set(index.segments) == {seg1, seg2}
        # AND a unit with no head reads as none
        assert await read_head(store, "day=2024-08-21") == (None, None)
        # AND a segment that is gone raises NotFoundError, a garbled one LedgerFormatError
        del store.objects[seg1]
        with pytest.raises(NotFoundError):
            await read_index(store, head)
        store.add(seg1, b"garbage")
        with pytest.raises(LedgerFormatError):
            await read_index(store, head)

    asyncio.run(scenario())


def test_a_garbled_head_or_segment_is_named_with_its_unit_and_file() -> None:
    async def scenario() -> None:
        # GIVEN a head that is not JSON, and a head whose segment is not Parquet
        store = MemoryStore()
        store.add(ledger.head_key(UNIT), b"{half a head")
        segment = ledger.segment_key(UNIT, 1, "aa")
        store.add(segment, b"garbage")
        # WHEN they are read
        with pytest.raises(LedgerFormatError) as head_error:
            await read_head(store, UNIT)
        with pytest.raises(LedgerFormatError) as segment_error:
            await read_index(store, Head(UNIT, generation=1, segments=[SegmentRef(segment, 1)]))
        # THEN each error names the unit and the file, and says no retry helps
        assert (head_error.value.unit, head_error.value.key) == (UNIT, ledger.head_key(UNIT))
        assert (segment_error.value.unit, segment_error.value.key) == (UNIT, segment)
        assert UNIT in str(segment_error.value) and segment in str(segment_error.value)
        assert not head_error.value.retryable

    asyncio.run(scenario())


def committed(store: MemoryStore, generation: int, *keys: str) -> tuple[Head, str]:
    """A head naming one segment per key (each holding that key), written to the store."""
    segments = []
    for n, key in enumerate(keys):
        segment = ledger.segment_key(UNIT, generation, f"s{n}")
        store.add(segment, ledger.encode_index([job_entry(key, f'"{generation}"', key)]))
        segments.append(SegmentRef(segment, 1))
    head = Head(UNIT, generation=generation, segments=segments)
    return head, store.add(ledger.head_key(UNIT), ledger.encode_head(head)).etag


def test_a_reader_whose_segments_vanish_under_it_reads_the_new_head() -> None:
    async def scenario() -> None:
        # GIVEN a reader holding generation 1, and a rival that has since committed generation 2 and
        # deleted the segment generation 1 named (merged away)
        store = MemoryStore()
        a, b = job_key("100"), job_key("200")
        old, old_etag = committed(store, 1, a)
        new, new_etag = committed(store, 2, a, b)
        del store.objects[old.segments[0].key]
        # WHEN the reader reads the index through the head it holds
        head, etag, index = await read_unit_index(store, UNIT, old, old_etag)
        # THEN it read the new head's index, and says which head that was
        assert (head, etag) == (new, new_etag)
        assert index.etag(a) == index.etag(b) == '"2"'

    asyncio.run(scenario())


def test_a_segment_missing_under_the_current_head_is_not_taken_for_a_race() -> None:
    async def scenario() -> None:
        # GIVEN the current head, one of whose segments is gone
        store = MemoryStore()
        head, etag = committed(store, 1, job_key("100"))
        del store.objects[head.segments[0].key]
        # WHEN it is read
        # THEN NotFoundError: the head has not moved, so the file is missing, not replaced
        with pytest.raises(NotFoundError):
            await read_unit_index(store, UNIT, head, etag)

    asyncio.run(scenario())


def test_a_reader_gives_up_after_a_bounded_number_of_moving_heads() -> None:
    async def scenario() -> None:
        # GIVEN a head that a rival replaces every time the reader tries (its files always gone)
        store = MemoryStore()
        head, etag = committed(store, 1, job_key("100"))
        attempts: list[int] = []

        async def read(current: Head) -> None:
            attempts.append(current.generation)
            committed(store, current.generation + 1, job_key("100"))
            raise NotFoundError("gone")

        # WHEN it reads
        # THEN it stops with a retryable error naming the unit, after READ_ATTEMPTS heads
        with pytest.raises(ArchiverError, match=UNIT) as raised:
            await read_current(store, UNIT, head, etag, read)
        assert raised.value.retryable
        assert attempts == list(range(1, READ_ATTEMPTS + 1))

    asyncio.run(scenario())


def test_size_tiers_grow_by_the_fanout() -> None:
    assert [tier(n) for n in (0, 1, 3, 4, 15, 16, 64)] == [0, 0, 0, 1, 1, 2, 3]


def test_nothing_is_merged_below_the_fanout() -> None:
    assert segments_to_merge(refs(*[1] * (SEGMENT_FANOUT - 1))) == []
    assert segments_to_merge([]) == []


def test_a_full_run_of_small_newest_segments_is_merged() -> None:
    segments = refs(1, 1, 2, 1)
    assert segments_to_merge(segments) == segments


def test_only_the_contiguous_newest_run_is_merged_never_across_a_bigger_segment() -> None:
    # GIVEN small segments, then a big one, then three small new ones
    segments = refs(1, 1, 1, 1000, 1, 1, 1)
    # THEN the newest run (three) is too short, and the older small ones are not reached past the big one
    assert segments_to_merge(segments) == []
    # WHEN one more small segment arrives
    segments = refs(1, 1, 1, 1000, 1, 1, 1, 2)
    # THEN exactly the newest four merge: a suffix of the list
    assert segments_to_merge(segments) == segments[-4:]


def test_a_newest_segment_of_a_bigger_tier_takes_the_smaller_ones_before_it() -> None:
    segments = refs(1000, 1, 1, 1, 20)
    assert segments_to_merge(segments) == segments[1:]


def test_a_merge_cascades_up_the_tiers_so_segments_stay_few() -> None:
    # GIVEN three tier-1 segments (earlier merges) and three tiny new ones
    segments = refs(4, 4, 4, 1, 1, 1, 1)
    # WHEN the fourth tiny one completes a run
    run = segments_to_merge(segments)
    # THEN its merged segment (tier 1) completes the run of tier-1 segments too, and all seven merge
    assert run == segments


def test_segments_stay_few_over_many_one_object_commits() -> None:
    # GIVEN a unit that commits one object at a time, as an event-driven Lambda does
    segments: list[SegmentRef] = []
    rewritten = 0
    for commit in range(2000):
        segments.append(SegmentRef(f"g{commit}", 1))
        # WHEN each commit merges what segments_to_merge says
        run = segments_to_merge(segments)
        if run:
            assert segments[-len(run) :] == run  # always the newest run
            merged = sum(segment.entries for segment in run)
            rewritten += merged
            segments = [*segments[: -len(run)], SegmentRef(f"m{commit}", merged)]
    # THEN the unit holds a few segments per tier, not one per few commits
    assert sum(segment.entries for segment in segments) == 2000
    assert len(segments) <= 3 * (tier(2000) + 1)
    # AND each entry was rewritten about log(n) times, not n times
    assert rewritten <= 2000 * (tier(2000) + 1)


def test_merged_entries_keep_newest_wins_inside_the_run() -> None:
    # GIVEN four segments where key A changes twice and B once
    a, b, c = job_key("100"), job_key("200"), job_key("300")
    run = refs(1, 1, 1, 1)
    index = UnitIndex(
        segments={
            "s0": [job_entry(a, '"a1"', "100"), job_entry(b, '"b1"', "200")],
            "s1": [job_entry(a, '"a2"', "100")],
            "s2": [job_entry(c, '"c1"', "300")],
            "s3": [job_entry(a, '"a3"', "100"), job_entry(b, '"b2"', "200")],
        }
    )
    # WHEN the run is merged
    merged = merged_entries(index, run)
    # THEN each key appears once, as its newest segment has it
    assert sorted((e.key, e.etag) for e in merged) == sorted([(a, '"a3"'), (b, '"b2"'), (c, '"c1"')])
