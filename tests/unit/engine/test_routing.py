"""A root pass: seen markers, routing in key order through the unit tree, and splitting overflowing leaves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from archiver.engine import ledger
from archiver.engine.context import RunContext, ledger_listings
from archiver.engine.ledger import Head
from archiver.engine.listing import Window, plan_source
from archiver.engine.routing import Batch, RootPass, load_tree
from archiver.engine.tree import sealed
from archiver.engine.units import folder_of
from archiver.errors import ArchiverError
from archiver.storage.store import ObjectInfo
from tests.unit.engine.jobs import job_body, job_folder_of, job_key
from tests.unit.engine.memory_store import MemoryStore
from tests.unit.engine.runs import run_context

ROOT = "day=2024-08-20"


def corpus(source: MemoryStore, count: int, first: int = 100) -> list[ObjectInfo]:
    return [source.add(job_key(str(first + i)), job_body(str(first + i))) for i in range(count)]


async def route_all(ctx: RunContext, *, use_markers: bool = True) -> tuple[RootPass, list[Batch]]:
    await ctx.ledgers.read(ctx.dest, ledger_listings(None))
    plan = await plan_source(ctx.source, Window())
    root_pass = RootPass(ctx, plan, ROOT, use_markers=use_markers)
    return root_pass, [batch async for batch in root_pass.batches()]


def test_objects_of_a_new_root_come_in_one_batch_in_key_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        source = MemoryStore()
        infos = corpus(source, 5)
        source.add("5234/jobs/77/20240820/100/notes.txt", b"not json")
        ctx = run_context(tmp_path, source, MemoryStore())
        root_pass, batches = await route_all(ctx)
        assert [(batch.unit, batch.objects) for batch in batches] == [(ROOT, infos)]
        # AND what is not JSON is counted as listed and skipped, but never routed
        assert (ctx.report.objects_listed, ctx.report.objects_skipped) == (6, 1)
        assert root_pass.fingerprint.count == 5
        assert root_pass.leaves()[0].unit == ROOT

    asyncio.run(scenario())


def test_an_unchanged_listing_with_a_seen_marker_is_skipped_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a root whose listing was marked seen
        source, dest = MemoryStore(), MemoryStore()
        infos = corpus(source, 5)
        source_digest = ledger.listing_fingerprint((i.key, i.etag) for i in infos)
        no_data = ledger.listing_fingerprint([])  # the archive holds no data file of the root yet
        marker = ledger.seen_key(ROOT, ledger.seen_digest(source_digest, no_data))
        dest.add(marker, b"")
        # WHEN a pass lists it again
        ctx = run_context(tmp_path, source, dest)
        root_pass, batches = await route_all(ctx)
        # THEN no batch comes, the objects count as skipped, and no head was read
        assert batches == [] and root_pass.skipped_whole
        assert ctx.report.objects_skipped == 5
        assert dest.counts.get == 0
        # WHEN one object changes
        source.add(infos[2].key, job_body("102", status="failed"))
        ctx = run_context(tmp_path, source, dest)
        root_pass, batches = await route_all(ctx)
        # THEN the root is routed again, every object (the worker diffs against the index)
        assert not root_pass.skipped_whole
        assert [len(batch.objects) for batch in batches] == [5]
        assert ctx.report.objects_listed == 5

    asyncio.run(scenario())


def test_a_sealed_root_routes_held_folders_to_itself_and_others_to_children(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a root sealed at job 103's folder that keeps job 104's folder
        source, dest = MemoryStore(), MemoryStore()
        infos = corpus(source, 6)
        held = [infos[4]]
        segment = ledger.segment_key(ROOT, 1, "t")
        entry = ledger.IndexEntry(held[0].key, held[0].etag, held[0].size, ledger.Outcome.JOB, "5234", "104")
        dest.add(segment, ledger.encode_index([entry]))
        head = sealed(
            Head(ROOT, generation=1, segments=[ledger.SegmentRef(segment, 1)]), [job_folder_of("103")]
        )
        dest.add(ledger.head_key(ROOT), ledger.encode_head(head))
        ctx = run_context(tmp_path, source, dest)
        # WHEN the root is routed
        _, batches = await route_all(ctx)
        # THEN each leaf gets its range in key order, and the root its held folder
        by_unit = {batch.unit: [info.key for info in batch.objects] for batch in batches}
        assert by_unit == {
            f"{ROOT}.0": [info.key for info in infos[:3]],
            f"{ROOT}.1": [infos[3].key, infos[5].key],
            ROOT: [held[0].key],
        }
        assert batches[0].unit == f"{ROOT}.0"  # a leaf's batch comes once listing passed it

    asyncio.run(scenario())


def test_an_overflowing_leaf_is_sealed_at_folder_starts_and_routed_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN 30 single-object job folders and a limit of 10
        source, dest = MemoryStore(), MemoryStore()
        infos = corpus(source, 30)
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        # WHEN the root is routed
        root_pass, batches = await route_all(ctx)
        # THEN the root was sealed (recorded in the store) and no batch exceeds the limit
        head = ledger.decode_head(dest.body(ledger.head_key(ROOT)))
        assert head.sealed and ctx.report.units_sealed == 1
        assert {child.lo for child in head.children[1:]} <= {folder_of(info.key) for info in infos}
        assert all(len(batch.objects) <= 10 for batch in batches)
        # AND every object is routed exactly once, to a child
        routed = [info.key for batch in batches for info in batch.objects]
        assert sorted(routed) == sorted(info.key for info in infos)
        assert {batch.unit for batch in batches} <= {child.unit for child in head.children}
        assert [leaf.unit for leaf in root_pass.leaves()] == [child.unit for child in head.children]

    asyncio.run(scenario())


@pytest.mark.parametrize("small_folders", [0, 1])
def test_a_leaf_without_a_split_point_is_routed_whole_and_never_split_forever(
    tmp_path: Path, small_folders: int
) -> None:
    async def scenario() -> None:
        # GIVEN one job with 15 versions (and maybe a small job before it) at a limit of 10
        source, dest = MemoryStore(), MemoryStore()
        small = corpus(source, small_folders, first=10)
        big = [
            source.add(
                job_key("100", stamp=f"1015{i:02d}", status="running"), job_body("100", status="running")
            )
            for i in range(15)
        ]
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        # WHEN the root is routed
        _, batches = await asyncio.wait_for(route_all(ctx), 30)
        # THEN every object comes once, in one batch for the unit, and nothing was sealed
        assert [[info.key for info in batch.objects] for batch in batches] == [[i.key for i in small + big]]
        assert ctx.report.units_sealed == 0 and dest.objects == {}

    asyncio.run(scenario())


def test_a_split_that_cannot_be_recorded_fails_the_pass_instead_of_dropping_objects(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a root with a committed head that a rival rewrites every time we try to seal it
        source, dest = MemoryStore(), MemoryStore()
        corpus(source, 30)
        head_key = ledger.head_key(ROOT)
        dest.add(head_key, ledger.encode_head(Head(ROOT, generation=1)))

        async def rival(key: str) -> None:
            if key == head_key:
                dest.add(key, dest.body(key))

        dest.before_put = rival
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        # WHEN the root is routed
        routed: list[str] = []
        with pytest.raises(ArchiverError, match="could not record its split") as raised:
            await ctx.ledgers.read(dest, ledger_listings(None))
            root_pass = RootPass(ctx, await plan_source(source, Window()), ROOT)
            async for batch in root_pass.batches():
                routed += [info.key for info in batch.objects]
        # THEN the pass fails (the run reports the root and does not mark it seen)
        assert raised.value.retryable
        assert len(routed) < 30

    asyncio.run(scenario())


def test_load_tree_reads_heads_and_the_folders_sealed_units_keep(tmp_path: Path) -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        corpus(source, 30)
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        _, batches = await route_all(ctx)
        units = sorted({key.split("/")[2] for key in dest.keys(ledger.LEDGER_ROOT)})
        tree = await load_tree(dest, ROOT, [*units, f"{ROOT}.9"])
        assert set(tree.states) == {ROOT}
        assert tree.state(ROOT).head.sealed and tree.held[ROOT] == frozenset()
        assert tree.state(ROOT).etag == dest.info(ledger.head_key(ROOT)).etag
        for batch in batches:
            for info in batch.objects:
                assert tree.route(folder_of(info.key)) == batch.unit

    asyncio.run(scenario())
