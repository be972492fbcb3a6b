"""Explicit Arrow schemas for every table the archiver writes.

Schemas are never inferred from a batch: every file of a table has exactly these
columns and types, whatever the input held. The rows the normaliser builds have
the columns of `TABLES`; a data file has those plus, in a partitioned table, the
partition day as a column of its own (`partition_date`, so that it never collides
with the `date` key of the `date=YYYY-MM-DD` folders that glob readers and Hive
tables read), and every column carries its Parquet field id (`FILE_SCHEMAS`).
Iceberg readers (Athena, Spark, Trino, DuckDB, pyiceberg) find columns by those
ids, so a column keeps its id forever: never reuse or renumber one.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

JOBS = pa.schema(
    [
        ("job_id", pa.string()),
        ("user_id", pa.string()),
        ("recipe_id", pa.string()),
        ("recipe_name", pa.string()),
        ("recipe_path", pa.string()),
        ("status", pa.string()),
        ("title", pa.string()),
        ("started_at", TIMESTAMP),
        ("completed_at", TIMESTAMP),
        ("master_job_id", pa.string()),
        ("parent_job_id", pa.string()),
        ("calling_job_id", pa.string()),
        ("calling_recipe_id", pa.string()),
        ("is_repeat", pa.bool_()),
        ("repeat_count", pa.int64()),
        ("is_test", pa.bool_()),
        ("action_count", pa.int64()),
        ("environment_type", pa.string()),
        ("environment_id", pa.string()),
        ("account_id", pa.string()),
        ("account_name", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("error_id", pa.string()),
        ("error_adapter", pa.string()),
        ("error_action", pa.string()),
        ("error_line_number", pa.int64()),
        ("report", pa.string()),
        ("lines_truncated", pa.bool_()),
        ("line_count", pa.int64()),
        ("stream_type", pa.string()),
        ("source_key", pa.string()),
        ("source_etag", pa.string()),
        # Extensions beyond the contract's column list.
        ("user_name", pa.string()),
        ("user_email", pa.string()),
        ("job_created_at", TIMESTAMP),
        ("error_at", TIMESTAMP),
        ("error_inner_message", pa.string()),
        ("error_raw", pa.string()),
    ]
)

JOB_LINES = pa.schema(
    [
        ("job_id", pa.string()),
        ("user_id", pa.string()),
        ("line_index", pa.int64()),
        ("recipe_line_number", pa.int64()),
        ("adapter_name", pa.string()),
        ("adapter_operation", pa.string()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("error", pa.string()),
        ("masked", pa.bool_()),
        ("duration_s", pa.float64()),
        ("source_key", pa.string()),
        # Extensions beyond the contract's column list.
        ("source_etag", pa.string()),
    ]
)

ACTIVITY = pa.schema(
    [
        ("event_id", pa.string()),
        ("event", pa.string()),
        ("category", pa.string()),
        ("occurred_at", TIMESTAMP),
        ("user_id", pa.string()),
        ("user_name", pa.string()),
        ("user_email", pa.string()),
        ("team_id", pa.string()),
        ("team_name", pa.string()),
        ("environment_type", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("resource_name", pa.string()),
        ("resource_path", pa.string()),
        ("ip_address", pa.string()),
        ("user_agent", pa.string()),
        ("details", pa.string()),
        ("source_key", pa.string()),
        # Extensions beyond the contract's column list.
        ("source_etag", pa.string()),
        ("stream_type", pa.string()),
    ]
)

QUARANTINE = pa.schema(
    [
        ("source_key", pa.string()),
        ("source_etag", pa.string()),
        ("size", pa.int64()),
        ("reason", pa.string()),
        ("detail", pa.string()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "jobs": JOBS,
    "job_lines": JOB_LINES,
    "activity": ACTIVITY,
    "quarantine": QUARANTINE,
}

PARTITIONED_TABLES = ("jobs", "job_lines", "activity")

PARTITION_COLUMN = "partition_date"
"""The partition day stored in every file of a partitioned table (Iceberg's identity partition source)."""
FIELD_ID_KEY = b"PARQUET:field_id"

# Parquet / Iceberg field ids, written out per column name: a column keeps its id forever. A new
# column takes the next unused id of its table (never a reused one, nor one shifted by an insertion).
FIELD_IDS: dict[str, dict[str, int]] = {
    "jobs": {
        "job_id": 1,
        "user_id": 2,
        "recipe_id": 3,
        "recipe_name": 4,
        "recipe_path": 5,
        "status": 6,
        "title": 7,
        "started_at": 8,
        "completed_at": 9,
        "master_job_id": 10,
        "parent_job_id": 11,
        "calling_job_id": 12,
        "calling_recipe_id": 13,
        "is_repeat": 14,
        "repeat_count": 15,
        "is_test": 16,
        "action_count": 17,
        "environment_type": 18,
        "environment_id": 19,
        "account_id": 20,
        "account_name": 21,
        "error_type": 22,
        "error_message": 23,
        "error_id": 24,
        "error_adapter": 25,
        "error_action": 26,
        "error_line_number": 27,
        "report": 28,
        "lines_truncated": 29,
        "line_count": 30,
        "stream_type": 31,
        "source_key": 32,
        "source_etag": 33,
        "user_name": 34,
        "user_email": 35,
        "job_created_at": 36,
        "error_at": 37,
        "error_inner_message": 38,
        "error_raw": 39,
        PARTITION_COLUMN: 40,
    },
    "job_lines": {
        "job_id": 1,
        "line_index": 2,
        "recipe_line_number": 3,
        "adapter_name": 4,
        "adapter_operation": 5,
        "input": 6,
        "output": 7,
        "error": 8,
        "masked": 9,
        "duration_s": 10,
        "source_key": 11,
        "source_etag": 12,
        PARTITION_COLUMN: 13,
        "user_id": 14,
    },
    "activity": {
        "event_id": 1,
        "event": 2,
        "category": 3,
        "occurred_at": 4,
        "user_id": 5,
        "user_name": 6,
        "user_email": 7,
        "team_id": 8,
        "team_name": 9,
        "environment_type": 10,
        "resource_type": 11,
        "resource_id": 12,
        "resource_name": 13,
        "resource_path": 14,
        "ip_address": 15,
        "user_agent": 16,
        "details": 17,
        "source_key": 18,
        "source_etag": 19,
        "stream_type": 20,
        PARTITION_COLUMN: 21,
    },
    "quarantine": {
        "source_key": 1,
        "source_etag": 2,
        "size": 3,
        "reason": 4,
        "detail": 5,
    },
}


def _file_schema(table: str) -> pa.Schema:
    """The row schema, plus the partition day for a partitioned table, every field with its id."""
    schema = TABLES[table]
    if table in PARTITIONED_TABLES:
        schema = schema.append(pa.field(PARTITION_COLUMN, pa.date32()))
    ids = FIELD_IDS[table]
    missing = [name for name in schema.names if name not in ids]
    if missing:
        raise RuntimeError(f"columns of {table} without a field id in FIELD_IDS: {', '.join(missing)}")
    if len(set(ids.values())) != len(ids):
        raise RuntimeError(f"FIELD_IDS of {table} gives two columns the same id")
    return pa.schema([field.with_metadata({FIELD_ID_KEY: str(ids[field.name]).encode()}) for field in schema])


FILE_SCHEMAS: dict[str, pa.Schema] = {table: _file_schema(table) for table in TABLES}
"""What a data file of each table holds: `TABLES` plus `partition_date`, with Parquet field ids."""

# Sort keys per table: rows are written in this order so that row-group
# min/max statistics prune well for the usual filters.
SORT_KEYS: dict[str, list[tuple[str, str]]] = {
    "jobs": [("user_id", "ascending"), ("recipe_id", "ascending"), ("started_at", "ascending")],
    "job_lines": [("job_id", "ascending"), ("line_index", "ascending")],
    "activity": [("occurred_at", "ascending"), ("event", "ascending")],
    "quarantine": [("source_key", "ascending")],
}
