"""Parquet files for one unit of work: explicit schemas, sorted row groups, rolled at a target size.

Rows are buffered per (table, partition) and flushed as sorted row groups to a
local temporary file; a file is closed once it reaches the target size. Files are
only handed to storage when complete, so readers never see a partial file.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from archiver.config import Settings
from archiver.formats.layout import parse_key
from archiver.formats.records import Row
from archiver.formats.schema import FILE_SCHEMAS, PARTITION_COLUMN, SORT_KEYS

ROW_GROUP_BYTES = 32 * 1024 * 1024
PAYLOAD_COLUMNS = frozenset({"input", "output", "details", "report", "error", "error_raw", "detail"})
PLAIN_TABLES = frozenset({"jobs"})
"""Tables written without dictionary encoding: `jobs` rows are sorted by user, recipe and start, so
zstd alone packs their repeats; measured on the held-out corpus, its files come out about 12% smaller
and are written in half the CPU time. (`job_lines` keeps dictionaries: without, 8% larger.)"""
"""JSON payloads: rarely repeated and possibly megabytes each, so no dictionary encoding."""
CHUNK_ROWS = 1024
"""Row dicts are turned into a compact Arrow chunk at least this often."""
CHUNK_BYTES = 4 * 1024 * 1024
"""...or once the source objects behind the pending rows weigh this much."""
POLICY_METADATA = b"archiver.policy"
"""Parquet key-value metadata: the digests of the policies the file's rows were written under."""
UNRECORDED = "none"
"""The policy of rows written before files recorded one (no redaction applied)."""


class BufferBudget:
    """Arrow bytes buffered by every partition writer of a run, with one limit.

    Past the limit the writer holding the most is flushed to its file as a row
    group, so memory stays bounded however many days and tables are open at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._writers: list[PartitionWriter] = []

    def register(self, writer: PartitionWriter) -> None:
        self._writers.append(writer)

    def unregister(self, writer: PartitionWriter) -> None:
        if writer in self._writers:
            self._writers.remove(writer)

    def grow(self, amount: int) -> None:
        """Account for `amount` more bytes; flush the largest buffers while over the limit."""
        self.used += amount
        while self.used > self.limit:
            largest = max(self._writers, key=lambda writer: writer.buffered_bytes, default=None)
            if largest is None or largest.buffered_bytes == 0:
                return
            largest.flush()

    def shrink(self, amount: int) -> None:
        self.used -= amount


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A finished local Parquet file and the archive key it is destined for."""

    path: Path
    key: str
    table: str
    rows: int
    bytes: int
    policies: tuple[str, ...] = ()


def file_policies(parquet: pq.ParquetFile) -> tuple[str, ...]:
    """The policy digests a data file records (UNRECORDED for a file from before they were recorded)."""
    metadata = parquet.metadata.metadata or {}
    recorded = metadata.get(POLICY_METADATA)
    return tuple(recorded.decode().split(",")) if recorded else (UNRECORDED,)


def _in_order(indices: pa.Array) -> bool:
    return len(indices) < 2 or bool(
        pc.all(pc.equal(indices, pa.array(range(len(indices)), indices.type))).as_py()
    )


def partition_dir(table: str, day: dt.date | None) -> str:
    if table == "quarantine" or day is None:
        return f"{table}/"
    return f"{table}/date={day.isoformat()}/"


def rows_to_table(rows: list[Row], schema: pa.Schema, day: dt.date | None = None) -> pa.Table:
    """Build an Arrow table from row dicts with the table's explicit types.

    The dicts are converted in one pass by Arrow itself (as a struct array of the row
    columns), not column by column in Python: about half the CPU time. A file
    schema's partition column is not in the rows: it is `day` in every row.
    """
    batch = pa.RecordBatch.from_struct_array(pa.array(rows, _row_type(schema)))
    columns = iter(batch.columns)
    arrays = [
        pa.repeat(pa.scalar(day, pa.date32()), len(rows)) if field.name == PARTITION_COLUMN else next(columns)
        for field in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


@functools.cache
def _row_type(schema: pa.Schema) -> pa.StructType:
    """The struct of a row dict: the schema's columns but the partition column."""
    return pa.struct([field for field in schema if field.name != PARTITION_COLUMN])


def conform(data: pa.Table, schema: pa.Schema, day: dt.date | None) -> pa.Table:
    """Rows of any file of the table (one written before the partition column, say) in the file schema."""
    if PARTITION_COLUMN in schema.names:
        if PARTITION_COLUMN in data.column_names:
            data = data.drop_columns([PARTITION_COLUMN])
        data = data.append_column(PARTITION_COLUMN, pa.array([day] * data.num_rows, pa.date32()))
    for name in set(schema.names) - set(data.column_names):
        data = data.append_column(name, _column_of_an_older_file(data, name, schema.field(name).type))
    return data.select(schema.names).cast(schema)


def _column_of_an_older_file(data: pa.Table, name: str, kind: pa.DataType) -> pa.Array:
    """A column added to the schema after `data` was written: job_lines' `user_id` is its key's
    workspace (as for every line written since); any other is null."""
    if name == "user_id" and "source_key" in data.column_names:
        keys = data.column("source_key").to_pylist()
        return pa.array([_workspace_of(key) for key in keys], kind)
    return pa.nulls(data.num_rows, kind)


def _workspace_of(key: str | None) -> str | None:
    info = parse_key(key) if key else None
    return info.user_id if info else None


@dataclass(slots=True)
class _OpenFile:
    path: Path
    key: str
    writer: pq.ParquetWriter
    rows: int = 0
    policies: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Compression:
    """The codec and levels of data files: the JSON payload columns, most of an archive's
    bytes, get their own (deeper) zstd level."""

    codec: str
    level: int
    payload_level: int

    @classmethod
    def of(cls, settings: Settings) -> Compression:
        return cls(settings.compression, settings.compression_level, settings.payload_compression_level)

    def levels(self, schema: pa.Schema) -> int | dict[str, int]:
        if self.codec != "zstd":
            return self.level
        return {name: self.payload_level if name in PAYLOAD_COLUMNS else self.level for name in schema.names}


@dataclass(slots=True)
class PartitionWriter:
    """Writes one table's rows for one partition into one or more rolled files."""

    table: str
    directory: str
    day: dt.date | None
    name_prefix: str
    workdir: Path
    target_bytes: int
    row_group_rows: int
    compression: Compression
    budget: BufferBudget
    policy: str = UNRECORDED
    """The digest of the policy new rows (`add_rows`) were written under."""
    schema: pa.Schema = field(init=False)
    _rows: list[Row] = field(default_factory=list)
    _pending_weight: int = 0
    _tables: list[pa.Table] = field(default_factory=list)
    _buffered_rows: int = 0
    buffered_bytes: int = 0
    _current: _OpenFile | None = None
    _sequence: int = 0
    finished: list[WrittenFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.schema = FILE_SCHEMAS[self.table]
        self.budget.register(self)

    def current_key(self, policies: tuple[str, ...] = ()) -> str:
        """The key of the file the next rows (written under `policies`) will land in."""
        if self._current is None:
            self._open()
        assert self._current is not None
        self._current.policies.update(policies)
        return self._current.key

    def add_rows(self, rows: list[Row], weight: int) -> str:
        """Buffer rows; `weight` approximates their size in bytes. Returns their file's key."""
        key = self.current_key((self.policy,) if rows else ())
        self._rows.extend(rows)
        self._pending_weight += weight
        pending = len(self._rows)
        if (
            pending >= CHUNK_ROWS
            or pending + self._buffered_rows >= self.row_group_rows
            or self._pending_weight >= CHUNK_BYTES
        ):
            self._chunk()
        return key

    def add_table(self, table: pa.Table, policies: tuple[str, ...]) -> str:
        """Buffer rows copied from a file whose rows were written under `policies`."""
        key = self.current_key(policies if table.num_rows else ())
        self._hold(conform(table, self.schema, self.day))
        return key

    def _chunk(self) -> None:
        """Pending row dicts to one Arrow chunk (a fraction of their memory)."""
        if self._rows:
            rows, self._rows, self._pending_weight = self._rows, [], 0
            self._hold(rows_to_table(rows, self.schema, self.day))

    def _absorb(self, table: pa.Table) -> None:
        self._tables.append(table)
        self._buffered_rows += table.num_rows
        self.buffered_bytes += table.nbytes
        self.budget.used += table.nbytes

    def _hold(self, table: pa.Table) -> None:
        self._absorb(table)
        if self._buffered_rows >= self.row_group_rows or self.buffered_bytes >= ROW_GROUP_BYTES:
            self.flush()
        else:
            self.budget.grow(0)

    def flush(self) -> None:
        """Write what is buffered as one sorted row group; roll the file at the target size."""
        self._flush()
        if self._current is not None and self._current.path.stat().st_size >= self.target_bytes:
            self._close_current()

    def _open(self) -> None:
        name = f"{self.name_prefix}-{self._sequence:04d}.parquet"
        self._sequence += 1
        key = f"{self.directory}{name}"
        path = self.workdir / key.replace("/", "__")
        writer = pq.ParquetWriter(
            path,
            self.schema,
            compression=self.compression.codec,
            compression_level=self.compression.levels(self.schema),
            write_statistics=True,
            use_dictionary=(
                False
                if self.table in PLAIN_TABLES
                else [name for name in self.schema.names if name not in PAYLOAD_COLUMNS]
            ),
        )
        self._current = _OpenFile(path=path, key=key, writer=writer)

    def _flush(self) -> None:
        if self._rows:
            rows, self._rows, self._pending_weight = self._rows, [], 0
            self._absorb(rows_to_table(rows, self.schema, self.day))
        if self._buffered_rows == 0:
            return
        parts = self._tables
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        order = pc.sort_indices(table, sort_keys=SORT_KEYS[self.table])
        if not _in_order(order):
            table = table.take(order)  # a copy: skipped when the rows already arrived sorted
        if self._current is None:
            self._open()
        assert self._current is not None
        self._current.writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._current.rows += table.num_rows
        self._tables = []
        self.budget.shrink(self.buffered_bytes)
        self._buffered_rows = self.buffered_bytes = 0

    def _close_current(self) -> None:
        current = self._current
        if current is None:
            return
        policies = tuple(sorted(current.policies))
        if policies:
            current.writer.add_key_value_metadata({POLICY_METADATA.decode(): ",".join(policies)})
        current.writer.close()
        self._current = None
        if current.rows == 0:
            os.unlink(current.path)
            return
        size = current.path.stat().st_size
        self.finished.append(WrittenFile(current.path, current.key, self.table, current.rows, size, policies))

    def close(self) -> list[WrittenFile]:
        """Flush what is buffered and close the open file; return every finished file."""
        self._flush()
        self._close_current()
        self.budget.unregister(self)
        return self.finished


@dataclass(slots=True)
class UnitWriter:
    """All partition writers of one unit's generation."""

    owner: str
    generation: int
    token: str
    workdir: Path
    target_bytes: int
    row_group_rows: int
    compression: Compression = field(default_factory=lambda: Compression.of(Settings()))
    budget: BufferBudget = field(default_factory=lambda: BufferBudget(256 * 1024 * 1024))
    policy: str = UNRECORDED
    _writers: dict[tuple[str, dt.date | None], PartitionWriter] = field(default_factory=dict)

    def writer_for(self, table: str, day: dt.date | None) -> PartitionWriter:
        slot = (table, None if table == "quarantine" else day)
        writer = self._writers.get(slot)
        if writer is None:
            writer = PartitionWriter(
                table=table,
                directory=partition_dir(table, day),
                day=None if table == "quarantine" else day,
                name_prefix=f"{self.owner}-g{self.generation:06d}-{self.token}",
                workdir=self.workdir,
                target_bytes=self.target_bytes,
                row_group_rows=self.row_group_rows,
                compression=self.compression,
                budget=self.budget,
                policy=self.policy,
            )
            self._writers[slot] = writer
        return writer

    def add_rows(self, table: str, day: dt.date | None, rows: list[Row], weight: int) -> str:
        return self.writer_for(table, day).add_rows(rows, weight)

    def add_table(
        self, table: str, day: dt.date | None, data: pa.Table, policies: tuple[str, ...] = ()
    ) -> str:
        return self.writer_for(table, day).add_table(data, policies)

    def close(self) -> list[WrittenFile]:
        files: list[WrittenFile] = []
        for writer in self._writers.values():
            files.extend(writer.close())
        return files

    def abandon(self) -> None:
        """Close and remove every local file (after a failure)."""
        for writer in self._writers.values():
            try:
                for written in writer.close():
                    written.path.unlink(missing_ok=True)
            except Exception:
                pass


def read_day_partition(key: str) -> dt.date | None:
    """The date of a `table/date=YYYY-MM-DD/name.parquet` key."""
    for part in key.split("/"):
        if part.startswith("date="):
            try:
                return dt.date.fromisoformat(part[5:])
            except ValueError:
                return None
    return None
