"""Read an archive's Iceberg tables back the way readers do: through pyiceberg and DuckDB's iceberg_scan.

DuckDB's extensions cannot be downloaded on the test machines; for DuckDB 1.4.4 they
come as packages (`duckdb-ext-iceberg`, `-avro`, `-httpfs`) whose `duckdb_ext/extensions`
folder is used as DuckDB's extension directory.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.table import Table

TABLES = ("jobs", "job_lines", "activity", "quarantine")


def extension_directory() -> str:
    spec = importlib.util.find_spec("duckdb_ext")
    assert spec is not None and spec.submodule_search_locations, "duckdb-ext-iceberg is not installed"
    return str(Path(next(iter(spec.submodule_search_locations))) / "extensions")


def duckdb_with_iceberg() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(
        config={"extension_directory": extension_directory(), "autoinstall_known_extensions": False}
    )
    connection.sql("LOAD iceberg")
    return connection


def local_catalog(dest: Path) -> SqlCatalog:
    """The catalog a local archive carries, opened as any pyiceberg user would."""
    root = dest.resolve()
    return SqlCatalog("archiver", uri=f"sqlite:///{root}/_archiver/iceberg.db", warehouse=f"file://{root}")


def table(catalog: Catalog, name: str) -> Table:
    return catalog.load_table(("archiver", name))


def pyiceberg_rows(catalog: Catalog, name: str, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table(catalog, name).scan(snapshot_id=snapshot_id).to_arrow().to_pylist()
    return rows


def duckdb_rows(catalog: Catalog, name: str, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    location = table(catalog, name).metadata_location
    travel = f", snapshot_from_id={snapshot_id}" if snapshot_id is not None else ""
    with duckdb_with_iceberg() as connection:
        rows: list[dict[str, Any]] = (
            connection.sql(f"SELECT * FROM iceberg_scan('{location}'{travel})").to_arrow_table().to_pylist()
        )
        return rows


def tables_both_ways(catalog: Catalog) -> dict[str, list[str]]:
    """Every table, canonical, as pyiceberg reads it; asserts DuckDB reads exactly the same rows."""
    found: dict[str, list[str]] = {}
    for name in TABLES:
        through_pyiceberg = canonical(pyiceberg_rows(catalog, name))
        assert canonical(duckdb_rows(catalog, name)) == through_pyiceberg, (
            f"{name}: DuckDB and pyiceberg differ"
        )
        found[name] = through_pyiceberg
    return found


def canonical(rows: list[dict[str, Any]], *, drop: tuple[str, ...] = ()) -> list[str]:
    """Rows comparable across readers: timestamps as UTC ISO text, each row's items sorted, rows sorted."""
    return sorted(
        repr(sorted((name, _plain(value)) for name, value in row.items() if name not in drop)) for row in rows
    )


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value
