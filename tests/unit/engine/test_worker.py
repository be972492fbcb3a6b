"""The unit worker: diff against the index, seal and hand down, retry lost races, keep rows on failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archiver.engine import ledger, worker
from archiver.engine.index import read_head, read_index
from archiver.engine.ledger import Head, Outcome
from archiver.engine.routing import load_tree
from archiver.engine.tree import UnitTree
from archiver.engine.units import folder_of
from archiver.engine.worker import UnitWorker
from archiver.errors import ArchiverError
from archiver.storage.store import ObjectInfo
from tests.unit.engine.jobs import job_body, job_key
from tests.unit.engine.memory_store import MemoryStore
from tests.unit.engine.runs import NOW_US, run_context

ROOT = "day=2024-08-20"


def corpus(source: MemoryStore, count: int, first: int = 100) -> list[ObjectInfo]:
    """`count` jobs, one object each, each in a folder of its own."""
    return [source.add(job_key(str(first + i)), job_body(str(first + i))) for i in range(count)]


async def unit_sizes(dest: MemoryStore, tree: UnitTree) -> dict[str, int]:
    """Source objects each committed unit's index holds."""
    sizes = {}
    for unit in sorted(tree.states):
        head, _ = await read_head(dest, unit)
        if head is not None:
            sizes[unit] = len(await read_index(dest, head))
    return sizes


def jobs_rows(dest: MemoryStore, tmp_path: Path) -> list[tuple[str, str]]:
    """(job_id, source_key) of every `jobs` row in the files the units' heads name."""
    heads = [
        ledger.decode_head(dest.body(key))
        for key in dest.keys(ledger.LEDGER_ROOT)
        if key.endswith("/head.json")
    ]
    rows = []
    for key in sorted(ref.key for head in heads for ref in head.files if ref.table == "jobs"):
        path = tmp_path / "read.parquet"
        path.write_bytes(dest.body(key))
        table = pq.read_table(path)
        rows += zip(table.column("job_id").to_pylist(), table.column("source_key").to_pylist(), strict=True)
    return sorted(rows)


def test_a_unit_that_would_outgrow_the_limit_is_sealed_and_its_children_share_the_objects(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        # GIVEN 30 jobs of distinct folders and a limit of 10 objects a unit
        source, dest = MemoryStore(), MemoryStore()
        infos = corpus(source, 30)
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        tree = UnitTree(ROOT)
        # WHEN they are archived into the root
        result = await UnitWorker(ctx).archive(tree, ROOT, infos)
        # THEN the root is sealed, and every object lands in exactly one unit, none holding more than 10
        assert result.complete and not result.failures
        root = tree.state(ROOT).head
        assert root.sealed and ctx.report.units_sealed == 1
        sizes = await unit_sizes(dest, tree)
        assert sum(sizes.values()) == 30
        assert max(sizes.values()) <= 10
        assert len([unit for unit, size in sizes.items() if size]) >= 3
        assert ctx.report.objects_archived == 30
        assert [job for job, _ in jobs_rows(dest, tmp_path)] == [str(100 + i) for i in range(30)]
        # AND each object sits in the unit routing sends it to
        for info in infos:
            head, _ = await read_head(dest, tree.route(folder_of(info.key)))
            assert head is not None and info.key in await read_index(dest, head)

    asyncio.run(scenario())


def test_a_second_archive_of_the_same_objects_is_a_no_op(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN 30 jobs archived into a sealed root and its children
        source, dest = MemoryStore(), MemoryStore()
        infos = corpus(source, 30)
        await UnitWorker(run_context(tmp_path, source, dest, unit_max_objects=10)).archive(
            UnitTree(ROOT), ROOT, infos
        )
        units = sorted({key.split("/")[2] for key in dest.keys(ledger.LEDGER_ROOT)})
        before = dict(dest.objects)
        puts, gets = dest.counts.put, source.counts.get
        # WHEN a new run (a tree loaded from the ledger) archives them again
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        tree = await load_tree(dest, ROOT, units)
        result = await UnitWorker(ctx).archive(tree, ROOT, infos)
        # THEN nothing is read from the source, nothing is written, every object is skipped
        assert result.complete
        assert (dest.counts.put - puts, source.counts.get - gets) == (0, 0)
        assert dest.objects == before
        assert ctx.report.objects_skipped == 30 and ctx.report.units_committed == 0

    asyncio.run(scenario())


def test_one_job_folder_bigger_than_the_limit_is_archived_whole_without_endless_splits(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        # GIVEN one job with 15 versions (one folder can never be split) and a limit of 10
        source, dest = MemoryStore(), MemoryStore()
        infos = [
            source.add(
                job_key("100", stamp=f"1015{i:02d}", status="running"), job_body("100", status="running")
            )
            for i in range(15)
        ]
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        # WHEN they are archived
        result = await asyncio.wait_for(UnitWorker(ctx).archive(UnitTree(ROOT), ROOT, infos), 30)
        # THEN they are archived (one unit over the limit beats a split that splits nothing) with one row
        assert result.complete
        assert ctx.report.objects_archived == 15
        assert len(dest.keys(ledger.LEDGER_ROOT)) <= 4
        assert [job for job, _ in jobs_rows(dest, tmp_path)] == ["100"]

    asyncio.run(scenario())


def test_a_new_version_of_a_key_replaces_its_row(tmp_path: Path) -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        key = job_key("100")
        first = source.add(key, job_body("100", status="failed"))
        ctx = run_context(tmp_path, source, dest)
        tree = UnitTree(ROOT)
        await UnitWorker(ctx).archive(tree, ROOT, [first])
        # WHEN the same key is overwritten (a new ETag) and archived again
        second = source.add(key, job_body("100", status="succeeded"))
        result = await UnitWorker(ctx).archive(tree, ROOT, [second])
        # THEN one row is left, from the new version
        assert result.complete
        index = await read_index(dest, tree.state(ROOT).head)
        assert index.etag(key) == second.etag
        assert jobs_rows(dest, tmp_path) == [("100", key)]

    asyncio.run(scenario())


def test_a_failed_re_read_keeps_the_old_row_and_leaves_the_unit_incomplete(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a job archived with a running version and a succeeded winner
        source, dest = MemoryStore(), MemoryStore()
        running = source.add(
            job_key("100", stamp="101500", status="running"), job_body("100", status="running")
        )
        winner_key = job_key("100", stamp="101600")
        winner = source.add(winner_key, job_body("100"))
        ctx = run_context(tmp_path, source, dest)
        tree = UnitTree(ROOT)
        await UnitWorker(ctx).archive(tree, ROOT, [running, winner])
        head_before = dest.body(ledger.head_key(ROOT))
        # WHEN the winner's key changes and the older version, which may win again, cannot be read
        changed = source.add(
            winner_key, job_body("100", status="failed", completed_at="2024-08-20T10:10:00Z")
        )
        source.unreadable.add(running.key)
        result = await UnitWorker(ctx).archive(tree, ROOT, [running, changed])
        # THEN nothing is committed: the job keeps its row, and the unit is not complete
        assert not result.complete
        assert [failure["key"] for failure in result.failures] == [running.key]
        assert dest.body(ledger.head_key(ROOT)) == head_before
        assert jobs_rows(dest, tmp_path) == [("100", winner_key)]
        # AND once the read works again, the change is taken
        source.unreadable.clear()
        result = await UnitWorker(ctx).archive(tree, ROOT, [running, changed])
        assert result.complete
        index = await read_index(dest, tree.state(ROOT).head)
        assert index.etag(winner_key) == changed.etag
        assert len(jobs_rows(dest, tmp_path)) == 1

    asyncio.run(scenario())


def test_a_lost_commit_race_is_retried_and_leaves_nothing_behind(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a unit with one job committed, and a rival that rewrites the head right before our next commit
        source, dest = MemoryStore(), MemoryStore()
        ctx = run_context(tmp_path, source, dest)
        tree = UnitTree(ROOT)
        await UnitWorker(ctx).archive(tree, ROOT, corpus(source, 1))
        head_key = ledger.head_key(ROOT)
        raced: list[str] = []

        async def rival(key: str) -> None:
            if key == head_key and not raced:
                raced.append(key)
                dest.add(key, dest.body(key))  # same head, new ETag: our If-Match loses

        dest.before_put = rival
        # WHEN two more jobs are archived
        infos = corpus(source, 2, first=200)
        result = await UnitWorker(ctx).archive(tree, ROOT, infos)
        # THEN the worker retried once and committed; the lost attempt's uploads are gone
        assert result.complete and raced
        assert ctx.report.commit_conflicts == 1
        head, _ = await read_head(dest, ROOT)
        assert head is not None and head.generation == 2
        data = set(dest.keys("jobs/")) | set(dest.keys("job_lines/"))
        assert data == head.file_keys() | {r.key for r in head.retired}
        assert set(dest.keys(ledger.unit_prefix(ROOT))) == {head_key} | head.ledger_keys()

    asyncio.run(scenario())


def test_a_unit_that_keeps_losing_gives_up_with_a_retryable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "BACKOFF_SECONDS", 0.0)

    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        ctx = run_context(tmp_path, source, dest)
        tree = UnitTree(ROOT)
        await UnitWorker(ctx).archive(tree, ROOT, corpus(source, 1))
        head_key = ledger.head_key(ROOT)

        async def rival(key: str) -> None:
            if key == head_key:
                dest.add(key, dest.body(key))

        dest.before_put = rival
        with pytest.raises(ArchiverError, match="gave up after 8 conflicts") as raised:
            await UnitWorker(ctx).archive(tree, ROOT, corpus(source, 1, first=300))
        assert raised.value.retryable
        assert ctx.report.commit_conflicts == worker.MAX_COMMIT_ATTEMPTS

    asyncio.run(scenario())


def test_a_unit_a_rival_sealed_meanwhile_hands_new_folders_to_its_children(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN our tree believes the root is unsealed, but another worker sealed it after we looked
        source, dest = MemoryStore(), MemoryStore()
        ctx = run_context(tmp_path, source, dest, unit_max_objects=10)
        other = run_context(tmp_path, source, dest, unit_max_objects=10)
        stale = UnitTree(ROOT)
        stale.state(ROOT)
        await UnitWorker(other).archive(UnitTree(ROOT), ROOT, corpus(source, 20))
        sealed_head, _ = await read_head(dest, ROOT)
        assert sealed_head is not None and sealed_head.sealed
        # WHEN we archive new jobs into the root
        late = corpus(source, 3, first=500)
        result = await UnitWorker(ctx).archive(stale, ROOT, late)
        # THEN they go to the child whose range holds them, not into the sealed root
        assert result.complete
        root_head, _ = await read_head(dest, ROOT)
        assert root_head is not None and root_head.sealed
        root_index = await read_index(dest, root_head)
        assert not any(info.key in root_index for info in late)
        last = root_head.children[-1].unit
        last_head, _ = await read_head(dest, last)
        assert last_head is not None
        last_index = await read_index(dest, last_head)
        assert all(info.key in last_index for info in late)

    asyncio.run(scenario())


def test_retired_files_are_collected_after_the_grace_period_even_with_nothing_new(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a job whose winner changed, so its first files were retired with a 10-minute grace period
        source, dest = MemoryStore(), MemoryStore()
        running = source.add(
            job_key("100", stamp="101500", status="running"), job_body("100", status="running")
        )
        tree = UnitTree(ROOT)
        await UnitWorker(run_context(tmp_path, source, dest, retire_grace_seconds=600)).archive(
            tree, ROOT, [running]
        )
        done = source.add(job_key("100", stamp="101600"), job_body("100"))
        await UnitWorker(run_context(tmp_path, source, dest, retire_grace_seconds=600)).archive(
            tree, ROOT, [running, done]
        )
        head, _ = await read_head(dest, ROOT)
        assert head is not None and head.retired
        retired = {item.key for item in head.retired}
        assert retired <= set(dest.objects)
        # WHEN a run after the grace period finds nothing new for the unit
        later = run_context(tmp_path, source, dest, retire_grace_seconds=600, now_us=NOW_US + 601_000_000)
        result = await UnitWorker(later).archive(tree, ROOT, [running, done])
        # THEN the retired files are deleted and the head no longer lists them; no data moved
        assert result.complete
        head_after, _ = await read_head(dest, ROOT)
        assert head_after is not None and head_after.retired == []
        assert not retired & set(dest.objects)
        assert head_after.file_keys() == head.file_keys()
        assert later.report.files_deleted + later.committer.files_deleted == len(retired)
        index = await read_index(dest, head_after)
        assert [e.outcome for e in index.get(done.key)] == [Outcome.JOB]

    asyncio.run(scenario())


def test_an_empty_unit_head_is_never_written_for_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        source, dest = MemoryStore(), MemoryStore()
        result = await UnitWorker(run_context(tmp_path, source, dest)).archive(UnitTree(ROOT), ROOT, [])
        assert result.complete and dest.objects == {}
        assert isinstance(UnitTree(ROOT).state(ROOT).head, Head)

    asyncio.run(scenario())
