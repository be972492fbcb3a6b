"""Compaction: which small files merge, which rows a copy-on-write keeps, and rewrite() over a store."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from archiver.engine.compaction import (
    TIER_BASE_BYTES,
    Rewriter,
    Sized,
    files_to_merge,
    keep_mask,
    rewrite,
    size_tier,
)
from archiver.engine.ledger import FileRef
from archiver.engine.writer import UnitWriter, WrittenFile
from archiver.formats.schema import JOB_LINES, JOBS, QUARANTINE
from tests.unit.engine.memory_store import MemoryStore

PART = "jobs/date=2024-08-20/"
DAY = dt.date(2024, 8, 20)
KIB = 1024


def jobs_table(*rows: tuple[str, str | None, str]) -> pa.Table:
    """`jobs` rows of (source_key, user_id, job_id), every other column null."""
    columns = {name: [None] * len(rows) for name in JOBS.names}
    columns["source_key"] = [key for key, _, _ in rows]
    columns["user_id"] = [user for _, user, _ in rows]
    columns["job_id"] = [job for _, _, job in rows]
    return pa.table(columns, schema=JOBS)


def lines_table(*rows: tuple[str, str | None, str, int]) -> pa.Table:
    """`job_lines` rows of (source_key, user_id, job_id, line_index), every other column null."""
    columns = {name: [None] * len(rows) for name in JOB_LINES.names}
    columns["source_key"] = [key for key, _, _, _ in rows]
    columns["user_id"] = [user for _, user, _, _ in rows]
    columns["job_id"] = [job for _, _, job, _ in rows]
    columns["line_index"] = [index for _, _, _, index in rows]
    return pa.table(columns, schema=JOB_LINES)


def test_size_tiers() -> None:
    assert size_tier(0, 8) == size_tier(TIER_BASE_BYTES - 1, 8) == 0
    assert size_tier(TIER_BASE_BYTES, 8) == 1
    assert size_tier(TIER_BASE_BYTES * 8 - 1, 8) == 1
    assert size_tier(TIER_BASE_BYTES * 8, 8) == 2
    assert size_tier(TIER_BASE_BYTES * 4, 1) == 3  # a fanout below 2 counts as 2


def test_files_to_merge_picks_the_smallest_full_tier_of_each_partition() -> None:
    # GIVEN one partition with three tiny files and four tier-1 files, and one with four tiny files
    files = [Sized(f"{PART}t{i}.parquet", 10 * KIB) for i in range(3)]
    files += [Sized(f"{PART}m{i}.parquet", 100 * KIB) for i in range(4)]
    files += [Sized(f"jobs/date=2024-08-21/t{i}.parquet", 1 * KIB) for i in range(4)]
    # WHEN the fanout is four
    chosen = files_to_merge(files, target_bytes=64 * 1024 * KIB, fanout=4)
    # THEN the first partition merges its full tier (tier 1), not the smaller unfull one;
    # the second merges its tiny files
    assert chosen == {f"{PART}m{i}.parquet" for i in range(4)} | {
        f"jobs/date=2024-08-21/t{i}.parquet" for i in range(4)
    }


def test_files_to_merge_takes_one_tier_at_a_time() -> None:
    files = [Sized(f"{PART}t{i}.parquet", 10 * KIB) for i in range(4)]
    files += [Sized(f"{PART}m{i}.parquet", 100 * KIB) for i in range(4)]
    assert files_to_merge(files, target_bytes=64 * 1024 * KIB, fanout=4) == {
        f"{PART}t{i}.parquet" for i in range(4)
    }


def test_files_at_or_above_half_the_target_are_never_merged() -> None:
    # GIVEN a target of 1 MiB: files of 512 KiB and more are big enough
    files = [Sized(f"{PART}big{i}.parquet", 512 * KIB) for i in range(8)]
    files += [Sized(f"{PART}small{i}.parquet", 511 * KIB) for i in range(2)]
    # THEN however many of them there are, only the smaller ones can merge (and two are too few)
    assert files_to_merge(files, target_bytes=1024 * KIB, fanout=2) == {
        f"{PART}small0.parquet",
        f"{PART}small1.parquet",
    }
    assert files_to_merge(files[:8], target_bytes=1024 * KIB, fanout=2) == set()


def test_keep_mask_drops_a_job_by_workspace_and_job_id() -> None:
    # GIVEN one export object holding job 100 of two workspaces, and another object
    data = jobs_table(("x.json", "5234", "100"), ("x.json", "6000", "100"), ("y.json", "5234", "100"))
    # WHEN workspace 5234's job 100 of x.json is dropped
    mask = keep_mask(data, {("x.json", ("5234", "100"))})
    # THEN only that row goes: workspace 6000's job 100 and y.json's row stay
    assert mask.to_pylist() == [False, True, True]


def test_keep_mask_drops_every_row_of_a_key_dropped_whole() -> None:
    data = jobs_table(("x.json", "5234", "100"), ("x.json", None, "101"), ("y.json", "5234", "100"))
    assert keep_mask(data, {("x.json", None)}).to_pylist() == [False, False, True]
    # a row without a user matches the job keyed with an empty user
    assert keep_mask(data, {("x.json", ("", "101"))}).to_pylist() == [True, False, True]


def test_keep_mask_on_job_lines_matches_source_key_and_job() -> None:
    data = lines_table(
        ("x.json", "5234", "100", 0),
        ("x.json", "5234", "100", 1),
        ("x.json", "5234", "101", 0),
        ("y.json", "5234", "100", 0),
    )
    assert keep_mask(data, {("x.json", ("5234", "100"))}).to_pylist() == [False, False, True, True]


def test_keep_mask_on_job_lines_keeps_the_other_workspaces_job_with_the_same_id() -> None:
    # GIVEN one export object with lines of job 100 of workspace 5234 and of workspace 6000
    data = lines_table(("x.json", "5234", "100", 0), ("x.json", "6000", "100", 0), ("x.json", None, "100", 1))
    # WHEN workspace 5234's job 100 leaves the file
    mask = keep_mask(data, {("x.json", ("5234", "100"))})
    # THEN only its line goes: workspace 6000's line stays, and so does the line of no workspace
    assert mask.to_pylist() == [False, True, True]
    # AND a line without a workspace matches the job keyed with an empty user
    assert keep_mask(data, {("x.json", ("", "100"))}).to_pylist() == [True, True, False]


def test_keep_mask_on_a_table_without_jobs_drops_by_source_key() -> None:
    columns = {name: [None, None] for name in QUARANTINE.names}
    columns["source_key"] = ["x.json", "y.json"]
    data = pa.table(columns, schema=QUARANTINE)
    assert keep_mask(data, {("x.json", None)}).to_pylist() == [False, True]


def unit_writer(tmp_path: Path, token: str) -> UnitWriter:
    return UnitWriter(
        owner="d20240820",
        generation=3,
        token=token,
        workdir=tmp_path,
        target_bytes=1 << 28,
        row_group_rows=1000,
    )


def write_local(tmp_path: Path, token: str, table: pa.Table) -> WrittenFile:
    writer = unit_writer(tmp_path, token)
    writer.add_table("jobs", DAY, table)
    (written,) = writer.close()
    return written


def sources_of(path: Path) -> list[tuple[str, str]]:
    table = pq.read_table(path)
    return sorted(
        zip(table.column("source_key").to_pylist(), table.column("job_id").to_pylist(), strict=True)
    )


def test_rewrite_copies_a_committed_file_without_the_removed_rows(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a committed file with two jobs in the store, and a new local file
        store = MemoryStore()
        committed = write_local(tmp_path, "old", jobs_table(("a.json", "5234", "1"), ("b.json", "5234", "2")))
        store.add(committed.key, committed.path.read_bytes())
        ref = FileRef(committed.key, "jobs", committed.rows, committed.bytes)
        new = write_local(tmp_path, "new", jobs_table(("c.json", "5234", "3")))
        rewriter = Rewriter(store, unit_writer(tmp_path, "newm"), batch_rows=1000, workdir=tmp_path)
        # WHEN job 1 of a.json must leave the committed file
        result = await rewrite(
            rewriter,
            [ref],
            [new],
            {committed.key: {("a.json", ("5234", "1"))}},
            target_bytes=1 << 28,
            fanout=8,
        )
        # THEN the committed file is replaced by a copy without it, the new file is uploaded as is
        (copy,) = [written for written in result.uploads if written.key != new.key]
        assert result.replaced == [committed.key]
        assert result.mapping == {committed.key: [copy.key]}
        assert sources_of(copy.path) == [("b.json", "2")]
        assert new in result.uploads and new.path.exists()
        assert "-newm-" in copy.key

    asyncio.run(scenario())


def test_rewrite_merges_a_full_tier_of_small_files_old_and_new(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN two small committed files and one small new file in one partition
        store = MemoryStore()
        refs = []
        for i in range(2):
            written = write_local(tmp_path, f"old{i}", jobs_table((f"{i}.json", "5234", str(i))))
            store.add(written.key, written.path.read_bytes())
            refs.append(FileRef(written.key, "jobs", 1, written.bytes))
        new = write_local(tmp_path, "new", jobs_table(("9.json", "5234", "9")))
        rewriter = Rewriter(store, unit_writer(tmp_path, "newm"), batch_rows=1000, workdir=tmp_path)
        # WHEN a fanout of three makes them a full tier
        result = await rewrite(rewriter, refs, [new], {}, target_bytes=1 << 28, fanout=3)
        # THEN one merged file holds all three jobs, the local one is gone, the committed ones are replaced
        (merged,) = result.uploads
        assert sources_of(merged.path) == [("0.json", "0"), ("1.json", "1"), ("9.json", "9")]
        assert sorted(result.replaced) == sorted(ref.key for ref in refs)
        assert set(result.mapping) == {refs[0].key, refs[1].key, new.key}
        assert not new.path.exists()

    asyncio.run(scenario())


def test_rewrite_leaves_a_big_committed_file_alone_when_rows_are_added(tmp_path: Path) -> None:
    async def scenario() -> None:
        # GIVEN a committed file at the target size, and small new files of the same partition
        store = MemoryStore()
        big = FileRef(f"{PART}d20240820-g000001-big-0000.parquet", "jobs", 1000, 1 << 20)
        news = [write_local(tmp_path, f"new{i}", jobs_table((f"{i}.json", "5234", str(i)))) for i in range(3)]
        rewriter = Rewriter(store, unit_writer(tmp_path, "newm"), batch_rows=1000, workdir=tmp_path)
        # WHEN nothing is removed
        result = await rewrite(rewriter, [big], news, {}, target_bytes=1 << 20, fanout=8)
        # THEN nothing is rewritten and the store was never read
        assert (result.uploads, result.mapping, result.replaced) == (news, {}, [])
        assert store.counts.get == 0

    asyncio.run(scenario())
