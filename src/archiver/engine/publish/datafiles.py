"""Iceberg `DataFile` entries for the archive's own Parquet files, from their footers.

`Table.add_files` refuses files that carry field ids, and infers the partition from
column statistics (which a file written before `partition_date` existed lacks), so
entries are built here: statistics from the footer, mapped to field ids by column
name, and the partition from the file's `date=YYYY-MM-DD` folder.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import Table
from pyiceberg.typedef import Record

from archiver.engine.ledger import FileRef
from archiver.engine.writer import read_day_partition
from archiver.formats.schema import PARTITIONED_TABLES

FOOTER_READERS = 16
EPOCH = dt.date(1970, 1, 1)


def data_files(table: Table, base: str, refs: list[FileRef]) -> list[DataFile]:
    """One entry per file (`base/key`), footers read concurrently."""
    if not refs:
        return []
    with ThreadPoolExecutor(max_workers=min(FOOTER_READERS, len(refs))) as pool:
        return list(pool.map(lambda ref: data_file(table, f"{base}/{ref.key}", ref), refs))


def data_file(table: Table, path: str, ref: FileRef) -> DataFile:
    metadata = _footer(table.io, path)
    schema = table.schema()
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=metadata,
        stats_columns=compute_statistics_plan(schema, table.metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    entry = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=partition_of(ref),
        file_size_in_bytes=ref.bytes,
        sort_order_id=None,
        spec_id=table.metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )
    entry.spec_id = table.metadata.default_spec_id
    return entry


def partition_of(ref: FileRef) -> Record:
    """The identity partition of `partition_date`: days since 1970-01-01 (None for an undated file)."""
    if ref.table not in PARTITIONED_TABLES:
        return Record()
    day = read_day_partition(ref.key)
    return Record(None if day is None else (day - EPOCH).days)


def _footer(io: FileIO, path: str) -> pq.FileMetaData:
    with io.new_input(path).open() as stream:
        return pq.read_metadata(stream)
