"""Read an archive back with DuckDB, the way a user would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq


def read_rows(root: Path, table: str) -> list[dict[str, Any]]:
    """Every row of one table, as dicts (partitioned tables include `date`)."""
    folder = root / table
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        return []
    if table == "quarantine":
        query = f"SELECT * FROM read_parquet('{folder}/*.parquet')"
    else:
        query = f"SELECT * FROM read_parquet('{folder}/*/*.parquet', hive_partitioning=true)"
    with duckdb.connect() as connection:
        rows: list[dict[str, Any]] = connection.sql(query).to_arrow_table().to_pylist()
        return rows


def data_files(root: Path) -> list[str]:
    """Every data file readers would see, relative to the archive root."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and not str(path.relative_to(root)).startswith("_archiver")
    )


def file_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of one data file, with its hive partition (`date=...` folder) as a column."""
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    partition = path.parent.name
    if partition.startswith("date="):
        day = dt.date.fromisoformat(partition[len("date=") :])
        for row in rows:
            row["date"] = day
    return rows
