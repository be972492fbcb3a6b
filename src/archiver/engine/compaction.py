"""Rewriting data files: copy-on-write of files that lose rows, and size-tiered merges of small files.

Both cost what the files involved weigh, never what the day weighs: a file of
target size is never rewritten just to add rows to its partition, and a merge
takes one tier's worth of small files at a time.
"""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archiver.engine.ledger import FileRef
from archiver.engine.writer import UnitWriter, WrittenFile, file_policies, read_day_partition
from archiver.storage.store import ObjectStore

TIER_BASE_BYTES = 64 * 1024
"""Files smaller than this are tier 0; each tier above is `fanout` times larger."""


@dataclass(frozen=True, slots=True)
class Sized:
    key: str
    bytes: int


def size_tier(size: int, fanout: int) -> int:
    return 0 if size < TIER_BASE_BYTES else int(math.log(size / TIER_BASE_BYTES, max(fanout, 2))) + 1


def files_to_merge(files: Iterable[Sized], *, target_bytes: int, fanout: int) -> set[str]:
    """Per partition, the smallest size tier holding `fanout` or more small files, if any.

    Small means under half the target size; a file at or above it is never merged.
    """
    tiers: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for file in files:
        if file.bytes < target_bytes // 2:
            tiers[file.key.rsplit("/", 1)[0]][size_tier(file.bytes, fanout)].append(file.key)
    chosen: set[str] = set()
    for by_tier in tiers.values():
        for level in sorted(by_tier):
            if len(by_tier[level]) >= fanout:
                chosen.update(by_tier[level])
                break
    return chosen


def keep_mask(data: pa.Table, drop: set[tuple[str, tuple[str, str] | None]]) -> pa.Array:
    """Rows to keep: not from a dropped (source key, job), nor from a source key dropped whole."""
    keys = data.column("source_key").to_pylist()
    whole = {key for key, job in drop if job is None}
    if "job_id" in data.column_names and "user_id" in data.column_names:
        jobs = data.column("job_id").to_pylist()
        users = data.column("user_id").to_pylist()
        keep = [
            key not in whole and (key, (user or "", job)) not in drop
            for key, job, user in zip(keys, jobs, users, strict=True)
        ]
    elif "job_id" in data.column_names:
        jobs = data.column("job_id").to_pylist()
        dropped_jobs = {(key, job[1]) for key, job in drop if job is not None}
        keep = [
            key not in whole and (key, job) not in dropped_jobs for key, job in zip(keys, jobs, strict=True)
        ]
    else:
        dropped_keys = {key for key, _ in drop}
        keep = [key not in dropped_keys for key in keys]
    return pc.cast(pa.array(keep, pa.bool_()), pa.bool_())


Mask = Callable[[pa.Table, Any], pa.Array]
"""Which rows of a batch to keep, given what must leave the file."""
Edit = Callable[[pa.Table, Any], pa.Table]
"""A batch as it must be after what changes in the file (rows dropped, or also edited)."""
Transform = Callable[[str, pa.Table, tuple[str, ...]], tuple[pa.Table, tuple[str, ...]]]
"""What a rewrite does to the rows it copies (table name, rows, their policies -> rows, policies)."""


class Rewriter:
    """Copies rows of existing files (new local ones, or committed ones streamed from the store)."""

    def __init__(
        self,
        dest: ObjectStore,
        writer: UnitWriter,
        *,
        batch_rows: int,
        workdir: Path,
        mask: Mask | None = None,
        edit: Edit | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.dest = dest
        self.writer = writer
        self.batch_rows = batch_rows
        self.workdir = workdir
        self.mask: Mask = mask or keep_mask
        self.edit: Edit = edit or self._filtered
        self.transform = transform

    def _filtered(self, data: pa.Table, drop: Any) -> pa.Table:
        return data.filter(self.mask(data, drop))

    async def copy(self, key: str, local: WrittenFile | None, drop: Collection[Any]) -> list[str]:
        """Copy `key`'s rows except `drop` (or as `drop` edits them); return the files they now live in."""
        if local is not None:
            return self._copy_file(key, local.path, drop)
        with tempfile.NamedTemporaryFile(dir=self.workdir, suffix=".parquet") as handle:
            await self.dest.get_file(key, Path(handle.name))
            return self._copy_file(key, Path(handle.name), drop)

    def _copy_file(self, key: str, path: Path, drop: Collection[Any]) -> list[str]:
        table_name = key.split("/", 1)[0]
        day = read_day_partition(key)
        destinations: list[str] = []
        parquet = pq.ParquetFile(path)
        # Copied rows keep the policies they were written under (recorded in the new file), unless
        # the rewrite exists to change that (`redact`, `forget`).
        policies = file_policies(parquet)
        for batch in parquet.iter_batches(batch_size=self.batch_rows):
            data = pa.Table.from_batches([batch])
            if drop:
                data = self.edit(data, drop)
            batch_policies = policies
            if self.transform is not None and data.num_rows:
                data, batch_policies = self.transform(table_name, data, policies)
            if data.num_rows:
                new_key = self.writer.add_table(table_name, day, data, batch_policies)
                if new_key not in destinations:
                    destinations.append(new_key)
        return destinations


@dataclass(slots=True)
class RewriteResult:
    """Files after rewriting: final uploads, old key -> new keys, and the committed files replaced."""

    uploads: list[WrittenFile]
    mapping: dict[str, list[str]]
    replaced: list[str]


async def rewrite(
    rewriter: Rewriter,
    committed: list[FileRef],
    new_files: list[WrittenFile],
    removals: Mapping[str, Collection[Any]],
    *,
    target_bytes: int,
    fanout: int,
    missing: set[str] | None = None,
) -> RewriteResult:
    """Apply removals by copy-on-write and merge one tier of small files per partition.

    Files in `missing` are gone from the archive: they are dropped, never read.
    """
    gone = missing or set()
    local = {written.key: written for written in new_files}
    sizes = [Sized(ref.key, ref.bytes) for ref in committed] + [Sized(f.key, f.bytes) for f in new_files]
    targets = {key for key, drop in removals.items() if drop} | files_to_merge(
        sizes, target_bytes=target_bytes, fanout=fanout
    )
    committed_keys = {ref.key for ref in committed}
    targets = (targets - gone) & (committed_keys | set(local))
    dropped = gone & committed_keys
    if not targets:
        return RewriteResult(new_files, {key: [] for key in dropped}, [])
    mapping: dict[str, list[str]] = {key: [] for key in dropped}
    try:
        for key in sorted(targets):
            mapping[key] = await rewriter.copy(key, local.get(key), removals.get(key, set()))
        merged = rewriter.writer.close()
    except BaseException:
        rewriter.writer.abandon()
        raise
    for key in targets & set(local):
        local[key].path.unlink(missing_ok=True)
    survivors = [written for written in new_files if written.key not in targets]
    return RewriteResult(survivors + merged, mapping, sorted(targets & committed_keys))
