"""The commit protocol against a store with real conditional writes: races, lost answers, cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from archiver.engine import ledger
from archiver.engine.commit import Committer, Generation
from archiver.engine.ledger import FileRef, Head, Retired, SegmentRef
from archiver.engine.writer import WrittenFile
from tests.unit.engine.memory_store import MemoryStore

UNIT = "day=2024-08-20"
HEAD = ledger.head_key(UNIT)


def data_key(generation: int, token: str) -> str:
    return f"jobs/date=2024-08-20/d20240820-g{generation:06d}-{token}-0000.parquet"


def attempt(tmp_path: Path, base: Head, base_etag: str | None, token: str, **extra: list[str]) -> Generation:
    """One attempt at the next generation of `base`: one data file and one segment."""
    generation = base.generation + 1
    path = tmp_path / f"{token}.parquet"
    path.write_bytes(b"PAR1 " + token.encode())
    written = WrittenFile(path, data_key(generation, token), "jobs", 1, path.stat().st_size)
    segment = ledger.segment_key(UNIT, generation, token)
    head = Head(
        unit=UNIT,
        generation=generation,
        segments=[*base.segments, SegmentRef(segment, 1)],
        files=[*base.files, FileRef(written.key, "jobs", 1, written.bytes)],
        lineage=[*base.lineage, token][-ledger.LINEAGE :],
    )
    return Generation(head, base_etag, token, [written], segment, b"segment " + token.encode(), **extra)


def seeded(store: MemoryStore) -> tuple[Head, str]:
    """A unit at generation 1, committed."""
    head = Head(
        UNIT,
        generation=1,
        segments=[SegmentRef(ledger.segment_key(UNIT, 1, "base"), 1)],
        files=[FileRef(data_key(1, "base"), "jobs", 1, 10)],
        lineage=["base"],
    )
    for key in [*head.file_keys(), *head.ledger_keys()]:
        store.add(key, b"x")
    return head, store.add(HEAD, ledger.encode_head(head)).etag


def current_head(store: MemoryStore) -> Head:
    return ledger.decode_head(store.body(HEAD))


def test_upload_names_everything_in_the_intent_first_then_uploads(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN an attempt that also merges away a segment and expires a retired file
        store = MemoryStore()
        base, etag = seeded(store)
        gen = attempt(tmp_path, base, etag, "aaaa", dropped_segments=["s-old"], expired=["old.parquet"])
        order: list[str] = []

        async def record(key: str) -> None:
            order.append(key)

        store.before_put = record
        # WHEN it uploads
        await Committer(store).upload(gen)
        # THEN the intent went first and names the uploads and what a win deletes
        assert order[0] == gen.intent_key == ledger.intent_key(UNIT, 2, "aaaa")
        assert orjson.loads(store.body(gen.intent_key)) == {
            "files": [data_key(2, "aaaa"), ledger.segment_key(UNIT, 2, "aaaa")],
            "after": ["s-old", "old.parquet"],
        }
        assert set(order[1:]) == {data_key(2, "aaaa"), ledger.segment_key(UNIT, 2, "aaaa")}
        # AND the local file is gone once uploaded, and nothing refers to the uploads yet
        assert not gen.uploads[0].path.exists()
        assert current_head(store) == base

    asyncio.run(scenario())


def test_two_committers_from_the_same_base_exactly_one_wins(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN two attempts at generation 2 from the same head
        store = MemoryStore()
        base, etag = seeded(store)
        first, second = attempt(tmp_path, base, etag, "aaaa"), attempt(tmp_path, base, etag, "bbbb")
        committer = Committer(store)
        await committer.upload(first)
        await committer.upload(second)
        # WHEN both publish
        won_first, _, _ = await committer.publish(first)
        won_second, current, current_etag = await committer.publish(second)
        # THEN exactly one wins, and the loser learns the winner's head
        assert (won_first, won_second) == (True, False)
        assert current == first.head and current_etag == store.info(HEAD).etag
        # WHEN the loser discards its attempt
        await committer.discard(second, current)
        # THEN its uploads and intent are gone, the winner's files and the base's stay
        assert not store.keys("jobs/date=2024-08-20/d20240820-g000002-bbbb")
        assert ledger.segment_key(UNIT, 2, "bbbb") not in store.objects
        assert second.intent_key not in store.objects
        assert {*first.head.file_keys(), *first.head.ledger_keys()} <= set(store.objects)

    asyncio.run(scenario())


def test_two_first_commits_of_a_unit_exactly_one_wins(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        empty = Head(UNIT)
        first, second = attempt(tmp_path, empty, None, "aaaa"), attempt(tmp_path, empty, None, "bbbb")
        results = [await Committer(store).publish(first), await Committer(store).publish(second)]
        assert [won for won, _, _ in results] == [True, False]
        assert current_head(store).lineage == ["aaaa"]

    asyncio.run(scenario())


def test_a_lost_answer_to_our_own_commit_counts_as_a_win(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a head put that lands but whose caller sees a 412 (its retry found the write in place)
        store = MemoryStore()
        base, etag = seeded(store)
        gen = attempt(tmp_path, base, etag, "aaaa")
        store.lose_answer(HEAD)
        # WHEN it publishes
        won, current, current_etag = await Committer(store).publish(gen)
        # THEN it finds its own token in the head and wins
        assert won
        assert current == gen.head and current_etag == store.info(HEAD).etag

    asyncio.run(scenario())


def test_a_lost_answer_then_a_rival_on_top_is_still_a_win_and_nothing_live_is_deleted(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN our commit lands, its answer is lost, and a rival commits generation 3 on top before we look
        store = MemoryStore()
        base, etag = seeded(store)
        ours = attempt(tmp_path, base, etag, "aaaa")
        committer = Committer(store)
        await committer.upload(ours)
        rival_box: list[Generation] = []

        async def rival_commits(_: str) -> None:
            rival = attempt(tmp_path, ours.head, store.info(HEAD).etag, "bbbb")
            await Committer(store).upload(rival)
            assert (await Committer(store).publish(rival))[0]
            rival_box.append(rival)

        store.lose_answer(HEAD, then=rival_commits)
        # WHEN we publish
        won, current, _ = await committer.publish(ours)
        # THEN our token is in the rival's lineage: it is a win, and the current head is the rival's
        (rival,) = rival_box
        assert won and current == rival.head
        assert rival.head.lineage[-2:] == ["aaaa", "bbbb"]
        # AND whatever the caller does next, our files (which the rival's head refers to) survive
        await committer.finish(ours)
        await committer.discard(ours, current)
        assert {*rival.head.file_keys(), *rival.head.ledger_keys()} <= set(store.objects)
        assert data_key(2, "aaaa") in store.objects and ledger.segment_key(UNIT, 2, "aaaa") in store.objects

    asyncio.run(scenario())


def test_a_commit_the_lineage_forgot_is_a_loss_but_its_live_files_are_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN our commit landed with a lost answer, then more rivals than the lineage remembers
        store = MemoryStore()
        base, etag = seeded(store)
        ours = attempt(tmp_path, base, etag, "aaaa")
        committer = Committer(store)
        await committer.upload(ours)

        async def rivals(_: str) -> None:
            head = ours.head
            for i in range(ledger.LINEAGE):
                rival = attempt(tmp_path, head, store.info(HEAD).etag, f"r{i:03d}")
                await Committer(store).upload(rival)
                assert (await Committer(store).publish(rival))[0]
                head = rival.head

        store.lose_answer(HEAD, then=rivals)
        # WHEN we publish and, not finding our token, discard
        won, current, _ = await committer.publish(ours)
        assert not won and current is not None and "aaaa" not in current.lineage
        await committer.discard(ours, current)
        # THEN the files of ours that the current head still refers to are not deleted; the intent is
        assert data_key(2, "aaaa") in current.file_keys()
        assert data_key(2, "aaaa") in store.objects
        assert ours.intent_key not in store.objects

    asyncio.run(scenario())


def test_discard_keeps_what_the_current_head_refers_to_even_as_retired(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        base, etag = seeded(store)
        ours = attempt(tmp_path, base, etag, "aaaa")
        await Committer(store).upload(ours)
        current = Head(UNIT, generation=5, retired=[Retired(data_key(2, "aaaa"), 1)])
        await Committer(store).discard(ours, current)
        assert data_key(2, "aaaa") in store.objects
        assert ledger.segment_key(UNIT, 2, "aaaa") not in store.objects

    asyncio.run(scenario())


def test_finish_deletes_the_intent_merged_segments_and_expired_files(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        base, etag = seeded(store)
        for key in ("s-old", "old.parquet"):
            store.add(key, b"x")
        gen = attempt(tmp_path, base, etag, "aaaa", dropped_segments=["s-old"], expired=["old.parquet"])
        committer = Committer(store)
        await committer.upload(gen)
        assert (await committer.publish(gen))[0]
        await committer.finish(gen)
        assert not {"s-old", "old.parquet", gen.intent_key} & set(store.objects)
        assert committer.files_deleted == 1

    asyncio.run(scenario())


def test_leftovers_are_swept_only_up_to_the_heads_generation(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a head at generation 4 and the debris of attempts before and after it
        store = MemoryStore()
        live_segment = ledger.segment_key(UNIT, 4, "live")
        head = Head(
            UNIT,
            generation=4,
            segments=[SegmentRef(live_segment, 3)],
            files=[FileRef(data_key(4, "live"), "jobs", 3, 10)],
            retired=[Retired(data_key(3, "gone"), 1)],
        )
        crashed = ledger.intent_key(UNIT, 3, "dead")
        garbled = ledger.intent_key(UNIT, 4, "junk")
        in_progress = ledger.intent_key(UNIT, 5, "busy")
        lost_segment = ledger.segment_key(UNIT, 4, "lost")
        busy_segment = ledger.segment_key(UNIT, 5, "busy")
        store.add(
            crashed, orjson.dumps({"files": [data_key(3, "dead"), data_key(4, "live")], "after": ["s-x"]})
        )
        store.add(garbled, b"{not json")
        store.add(in_progress, orjson.dumps({"files": [data_key(5, "busy")], "after": []}))
        for key in (data_key(3, "dead"), data_key(4, "live"), data_key(3, "gone"), data_key(5, "busy")):
            store.add(key, b"x")
        for key in ("s-x", live_segment, lost_segment, busy_segment, HEAD):
            store.add(key, b"x")
        ledger_keys = [crashed, garbled, in_progress, live_segment, lost_segment, busy_segment, HEAD]
        committer = Committer(store)
        # WHEN leftovers are removed
        handled = await committer.remove_leftovers(head, sorted(ledger_keys))
        # THEN what attempts at generations up to 4 left, and nothing live, is gone
        assert not {crashed, garbled, lost_segment, data_key(3, "dead"), "s-x"} & set(store.objects)
        assert {live_segment, data_key(4, "live"), data_key(3, "gone"), HEAD} <= set(store.objects)
        # AND generation 5 (another worker's, in progress) is untouched
        assert {in_progress, busy_segment, data_key(5, "busy")} <= set(store.objects)
        assert sorted(handled) == sorted([crashed, garbled, lost_segment])
        assert committer.files_deleted == 2  # the dead data file and s-x, not ledger objects

    asyncio.run(scenario())


def listed_attempt(tmp_path: Path, base: Head, base_etag: str | None, token: str) -> Generation:
    """An attempt whose segment names its uploads, as staging makes them (nothing to delete after)."""
    gen = attempt(tmp_path, base, base_etag, token)
    gen.segment_body = ledger.encode_index([], [written.key for written in gen.uploads])
    gen.segment_lists_uploads = True
    return gen


def test_a_segment_naming_its_uploads_goes_first_and_no_intent_is_written(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN an attempt whose segment names its data file, with nothing to delete after a win
        store = MemoryStore()
        base, etag = seeded(store)
        gen = listed_attempt(tmp_path, base, etag, "aaaa")
        order: list[str] = []

        async def record(key: str) -> None:
            order.append(key)

        store.before_put = record
        # WHEN it uploads, publishes and finishes
        committer = Committer(store)
        await committer.upload(gen)
        won, _, _ = await committer.publish(gen)
        deletes_before = store.counts.delete
        await committer.finish(gen)
        # THEN the segment went first (it says what a crash leaves), then the data file, then the head
        assert won and order == [gen.segment_key, data_key(2, "aaaa"), HEAD]
        assert ledger.segment_uploads(store.body(gen.segment_key or "")) == [data_key(2, "aaaa")]
        # AND no intent was written, so none is deleted: the commit made no DELETE at all
        assert gen.intent_key not in store.objects and store.counts.delete == deletes_before

    asyncio.run(scenario())


def test_the_segment_of_a_crashed_attempt_names_what_the_sweep_removes(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN an attempt at generation 2 that crashed after its uploads, before its head
        store = MemoryStore()
        base, etag = seeded(store)
        crashed = listed_attempt(tmp_path, base, etag, "dead")
        await Committer(store).upload(crashed)
        # ... and a later attempt from the same head that won
        winner = listed_attempt(tmp_path, base, etag, "live")
        committer = Committer(store)
        await committer.upload(winner)
        assert (await committer.publish(winner))[0]
        # WHEN the winner's head sweeps the ledger's leftovers
        ledger_keys = store.keys(ledger.unit_prefix(UNIT))
        handled = await committer.remove_leftovers(winner.head, ledger_keys)
        # THEN the crashed attempt's segment and the data file it named are gone, nothing live is
        assert crashed.segment_key in handled
        assert not {crashed.segment_key, data_key(2, "dead")} & set(store.objects)
        assert {*winner.head.file_keys(), *winner.head.ledger_keys(), HEAD} <= set(store.objects)
        assert committer.files_deleted == 1

    asyncio.run(scenario())
