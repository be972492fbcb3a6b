"""Staging a unit's next generation: files, the new segment, merged segments, retired files, lineage."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.commit import Generation
from archiver.engine.context import RunContext
from archiver.engine.generation import GenerationBuilder, Parsed, VersionResolver
from archiver.engine.index import UnitIndex, read_index
from archiver.engine.ledger import Child, Head, Outcome, Retired, SegmentRef
from archiver.engine.parsing import Parser
from archiver.engine.staging import stage_generation
from archiver.engine.tree import UnitState
from archiver.engine.writer import UnitWriter
from tests.unit.engine.jobs import job_body, job_key, parsed
from tests.unit.engine.memory_store import MemoryStore

UNIT = "day=2024-08-20"
NOW = 1_724_200_000_000_000
GRACE_SECONDS = 600


def context(tmp_path: Path, store: MemoryStore, **settings: int) -> RunContext:
    return RunContext(
        source=store,
        dest=store,
        settings=Settings(retire_grace_seconds=GRACE_SECONDS, **settings),  # type: ignore[arg-type]
        workdir=tmp_path,
        now_us=NOW,
        parser=Parser(1),
    )


def builder_for(ctx: RunContext, state: UnitState, index: UnitIndex, token: str) -> GenerationBuilder:
    writer = UnitWriter(
        owner=ledger.file_owner(state.head.unit),
        generation=state.head.generation + 1,
        token=token,
        workdir=ctx.workdir,
        target_bytes=ctx.settings.target_file_bytes,
        row_group_rows=ctx.settings.row_group_rows,
    )
    return GenerationBuilder(writer, VersionResolver(index))


async def commit(
    ctx: RunContext, state: UnitState, items: list[Parsed], token: str
) -> tuple[UnitState, Generation]:
    """Stage `items` on the unit's committed state and publish it; the new state."""
    index = await read_index(ctx.dest, state.head)
    builder = builder_for(ctx, state, index, token)
    builder.add_group(items)
    generation = await stage_generation(ctx, state, index, builder, token)
    assert generation is not None
    await ctx.committer.upload(generation)
    won, head, etag = await ctx.committer.publish(generation)
    assert won and head is not None
    await ctx.committer.finish(generation)
    return UnitState(head, etag), generation


def test_an_empty_generation_stages_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        ctx = context(tmp_path, store)
        state = UnitState(Head(UNIT))
        builder = builder_for(ctx, state, UnitIndex(), "tok")
        assert await stage_generation(ctx, state, UnitIndex(), builder, "tok") is None
        assert list(tmp_path.iterdir()) == []

    asyncio.run(scenario())


def test_a_first_generation_names_its_files_segment_and_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a child unit with a range and children of its own, nothing committed yet
        store = MemoryStore()
        ctx = context(tmp_path, store)
        head = Head(f"{UNIT}.1", lo="5234/", hi="6000/", children=[Child(f"{UNIT}.1.0", "5234/")])
        state = UnitState(head)
        item = parsed(job_key("100"), job_body("100", lines=3))
        builder = builder_for(ctx, state, UnitIndex(), "tok1")
        builder.add_group([item])
        # WHEN its generation is staged
        generation = await stage_generation(ctx, state, UnitIndex(), builder, "tok1")
        # THEN it is generation 1 of the unit, with its range, children, files, segment and token
        assert generation is not None
        new = generation.head
        assert (new.generation, new.lo, new.hi, new.children) == (1, "5234/", "6000/", head.children)
        assert sorted(ref.table for ref in new.files) == ["job_lines", "jobs"]
        assert {ref.key for ref in new.files} == {written.key for written in generation.uploads}
        assert all(key.rsplit("/", 1)[1].startswith("d20240820.1-g000001-tok1") for key in new.file_keys())
        assert generation.segment_key == ledger.segment_key(f"{UNIT}.1", 1, "tok1")
        assert new.segments == [SegmentRef(generation.segment_key, 1)]
        assert new.lineage == ["tok1"] and generation.base_etag is None
        assert generation.segment_body is not None
        (entry,) = ledger.decode_index(generation.segment_body)
        assert (entry.key, entry.outcome, set(entry.files)) == (item.info.key, Outcome.JOB, new.file_keys())
        assert (generation.dropped_segments, generation.expired, new.retired) == ([], [], [])

    asyncio.run(scenario())


def test_a_new_winner_rewrites_the_old_file_and_retires_it_for_the_grace_period(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN two jobs committed in one generation (one file per table)
        store = MemoryStore()
        ctx = context(tmp_path, store)
        running = parsed(job_key("100", stamp="101500", status="running"), job_body("100", status="running"))
        other = parsed(job_key("200"), job_body("200"))
        state, _ = await commit(ctx, UnitState(Head(UNIT)), [running, other], "tok1")
        old_files = state.head.file_keys()
        # WHEN job 100's succeeded version arrives
        done = parsed(job_key("100", stamp="101600"), job_body("100"))
        state, second = await commit(ctx, state, [done], "tok2")
        # THEN the old files are replaced by copies without the old version, and retired as of now
        assert not old_files & state.head.file_keys()
        assert sorted(state.head.retired, key=lambda r: r.key) == sorted(
            (Retired(key, NOW) for key in old_files), key=lambda r: r.key
        )
        assert second.expired == [] and old_files <= set(store.objects)  # still readable for a while
        jobs = [ref.key for ref in state.head.files if ref.table == "jobs"]
        rows = [row for key in jobs for row in pq.read_table(_local(tmp_path, store, key)).to_pylist()]
        assert sorted((row["source_key"], row["job_id"]) for row in rows) == sorted(
            [(done.info.key, "100"), (other.info.key, "200")]
        )
        # AND the index of job 200, whose rows moved to the copy, now names the copy
        index = await read_index(store, state.head)
        (entry,) = index.get(other.info.key)
        assert entry.files and set(entry.files) <= state.head.file_keys()
        assert [e.outcome for e in index.get(running.info.key)] == [Outcome.SUPERSEDED]

    asyncio.run(scenario())


def _local(tmp_path: Path, store: MemoryStore, key: str) -> Path:
    path = tmp_path / key.replace("/", "__")
    path.write_bytes(store.body(key))
    return path


@pytest.mark.parametrize(("age_seconds", "expired"), [(GRACE_SECONDS, True), (GRACE_SECONDS - 1, False)])
def test_retired_files_expire_once_the_grace_period_has_passed(
    tmp_path: Path, age_seconds: int, expired: bool
) -> None:
    async def scenario() -> None:
        # GIVEN a unit with a file retired `age_seconds` ago
        store = MemoryStore()
        ctx = context(tmp_path, store)
        retired = Retired("jobs/date=2024-08-20/old.parquet", NOW - age_seconds * 1_000_000)
        state = UnitState(Head(UNIT, retired=[retired]))
        builder = builder_for(ctx, state, UnitIndex(), "tok")
        builder.add_group([parsed(job_key("100"), job_body("100"))])
        # WHEN the next generation is staged
        generation = await stage_generation(ctx, state, UnitIndex(), builder, "tok")
        # THEN the file is deleted with it only once the grace period is over
        assert generation is not None
        assert generation.expired == ([retired.key] if expired else [])
        assert generation.head.retired == ([] if expired else [retired])

    asyncio.run(scenario())


def test_the_lineage_keeps_the_newest_tokens_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = MemoryStore()
        ctx = context(tmp_path, store)
        old = [f"t{i:03d}" for i in range(ledger.LINEAGE)]
        state = UnitState(Head(UNIT, generation=40, lineage=old), '"e"')
        builder = builder_for(ctx, state, UnitIndex(), "new")
        builder.add_group([parsed(job_key("100"), job_body("100"))])
        generation = await stage_generation(ctx, state, UnitIndex(), builder, "new")
        assert generation is not None
        assert generation.head.lineage == [*old[1:], "new"]
        assert generation.base_etag == '"e"' and generation.head.generation == 41

    asyncio.run(scenario())


def test_every_fourth_small_commit_merges_the_newest_segments_into_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN three one-object commits
        store = MemoryStore()
        ctx = context(tmp_path, store)
        state = UnitState(Head(UNIT))
        items = [parsed(job_key(str(100 + i)), job_body(str(100 + i))) for i in range(4)]
        for i in range(3):
            state, _ = await commit(ctx, state, [items[i]], f"tok{i}")
        older = [segment.key for segment in state.head.segments]
        assert len(older) == 3
        # WHEN a fourth commits
        state, generation = await commit(ctx, state, [items[3]], "tok3")
        # THEN its segment holds all four keys, and the three before it are merged away and deleted
        assert state.head.segments == [SegmentRef(ledger.segment_key(UNIT, 4, "tok3"), 4)]
        assert generation.dropped_segments == older
        assert not set(older) & set(store.objects)
        index = await read_index(store, state.head)
        assert sorted(index.by_key) == sorted(item.info.key for item in items)

    asyncio.run(scenario())
