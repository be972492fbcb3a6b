"""Explicit Arrow schemas for every table the archiver writes.

Schemas are never inferred from a batch: every file of a table has exactly these
columns and types, whatever the input held. The hive partition column `date` is
not stored inside the files; it lives in the `date=YYYY-MM-DD` folder name.
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

# Sort keys per table: rows are written in this order so that row-group
# min/max statistics prune well for the usual filters.
SORT_KEYS: dict[str, list[tuple[str, str]]] = {
    "jobs": [("user_id", "ascending"), ("recipe_id", "ascending"), ("started_at", "ascending")],
    "job_lines": [("job_id", "ascending"), ("line_index", "ascending")],
    "activity": [("occurred_at", "ascending"), ("event", "ascending")],
    "quarantine": [("source_key", "ascending")],
}
