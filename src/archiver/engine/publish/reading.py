"""Reading a published table back (the demo's tour), and the hint DuckDB looks for in a local table.

DuckDB's `iceberg_scan('DEST/jobs')` reads `metadata/version-hint.text` to find the
current metadata file, as Hadoop-style tables have it; a local archive's tables get
one after every publish, so a user can point DuckDB at the table's folder.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyiceberg.table import Table

from archiver.config import Settings
from archiver.engine.publish import catalog as catalogs
from archiver.errors import ConfigError
from archiver.storage.store import ObjectStore

VERSION_HINT = "metadata/version-hint.text"
METADATA_SUFFIX = ".metadata.json"


def read_table(dest: ObjectStore, settings: Settings, table: str, snapshot_id: int | None = None) -> pa.Table:
    """The table's rows as of its current snapshot (or `snapshot_id`), through the catalog."""
    catalog = catalogs.open_catalog(dest, settings)
    if catalog is None:
        raise ConfigError("this archive has no Iceberg catalog (set ARCHIVER_CATALOG for an S3 archive)")
    return catalog.load_table(catalogs.identifier(settings, table)).scan(snapshot_id=snapshot_id).to_arrow()


def write_version_hint(table: Table) -> None:
    """`metadata/version-hint.text` of a local table: its current metadata file's name, less the suffix."""
    location = Path(table.metadata_location.removeprefix("file://"))
    hint = Path(table.location().removeprefix("file://")) / VERSION_HINT
    hint.write_text(location.name.removesuffix(METADATA_SUFFIX))
