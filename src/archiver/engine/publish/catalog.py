"""Opening the archive's Iceberg catalog and its four tables, by the ecosystem's conventions.

- A local DEST has its own catalog with no setup: pyiceberg's SQL catalog on SQLite at
  `DEST/_archiver/iceberg.db`.
- `ARCHIVER_CATALOG=NAME` names a catalog configured the pyiceberg way
  (`PYICEBERG_CATALOG__NAME__...` variables or `.pyiceberg.yaml`: Glue, REST, SQL), which
  pyiceberg reads itself; S3 FileIO settings it leaves out come from the standard AWS
  configuration (`config.file_io_properties`).
- An S3 DEST with neither has no tables.

Tables are `NAMESPACE.<table>`, located at `DEST/<table>`, Iceberg v2, with the file schema
of `formats.schema` (field ids included), partitioned by identity of `partition_date`
(`quarantine` unpartitioned), and a name mapping so that files written before field ids
are read by name.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchNamespaceError, NoSuchTableError
from pyiceberg.io.pyarrow import pyarrow_to_schema
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.name_mapping import create_mapping_from_schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.utils.config import Config

from archiver.config import Settings, file_io_properties
from archiver.engine.publish.mode import EMBEDDED_CATALOG_KEY, is_local
from archiver.errors import ConfigError
from archiver.formats.schema import FIELD_IDS, FILE_SCHEMAS, PARTITION_COLUMN, PARTITIONED_TABLES
from archiver.storage.store import ObjectStore

EMBEDDED_CATALOG_NAME = "archiver"
PARTITION_FIELD_ID = 1000

# Commits are retried by the publisher, which recomputes the diff from a fresh table and ledger;
# pyiceberg's own retry would replay the old diff onto a table a rival has changed. Old metadata
# files are deleted as new ones are written, so they do not pile up at one publish every minutes.
TABLE_PROPERTIES = {
    "format-version": "2",
    "commit.retry.num-retries": "0",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "32",
    "commit.manifest.target-size-bytes": str(8 * 1024 * 1024),
    "commit.manifest.min-count-to-merge": "16",
}

log = logging.getLogger(__name__)


def archive_location(dest: ObjectStore) -> str:
    """The archive's root as Iceberg paths spell it: `s3://bucket/prefix` or an absolute folder."""
    if is_local(dest):
        return str(Path(dest.url).resolve())
    return dest.url.rstrip("/")


def table_location(dest: ObjectStore, table: str) -> str:
    return f"{archive_location(dest)}/{table}"


def open_catalog(dest: ObjectStore, settings: Settings) -> Catalog | None:
    """The archive's catalog, or None for an S3 DEST with no catalog named."""
    if settings.catalog is not None:
        configured = Config().get_catalog_config(settings.catalog)
        if not configured:
            raise ConfigError(
                f"ARCHIVER_CATALOG names {settings.catalog!r}, but no catalog of that name is configured "
                f"(PYICEBERG_CATALOG__{settings.catalog.upper()}__TYPE=glue, ... or ~/.pyiceberg.yaml)"
            )
        defaults = {key: value for key, value in file_io_properties().items() if key not in configured}
        # The configuration read now is passed on whole: load_catalog alone would use the one
        # pyiceberg read from the environment when it was first imported.
        properties = {key: value for key, value in configured.items() if isinstance(value, str)}
        return load_catalog(settings.catalog, **{**defaults, **properties})
    if not is_local(dest):
        return None
    from pyiceberg.catalog.sql import SqlCatalog  # SQLAlchemy: only a local DEST needs it (not Lambda)

    root = archive_location(dest)
    return SqlCatalog(
        EMBEDDED_CATALOG_NAME, uri=f"sqlite:///{root}/{EMBEDDED_CATALOG_KEY}", warehouse=f"file://{root}"
    )


def iceberg_schema(table: str) -> Schema:
    """The table's Iceberg schema, its columns in field-id order.

    A catalog gives a new table fresh ids in column order (1, 2, ...), whatever ids the
    schema it is handed carries; FIELD_IDS are contiguous from 1, so listed in id order
    the columns keep exactly the ids the data files carry.
    """
    schema = FILE_SCHEMAS[table]
    by_id = sorted(schema, key=lambda field: FIELD_IDS[table][field.name])
    return pyarrow_to_schema(pa.schema(by_id))


def partition_spec(table: str) -> PartitionSpec:
    if table not in PARTITIONED_TABLES:
        return UNPARTITIONED_PARTITION_SPEC
    source = FIELD_IDS[table][PARTITION_COLUMN]
    return PartitionSpec(
        PartitionField(
            source_id=source,
            field_id=PARTITION_FIELD_ID,
            transform=IdentityTransform(),
            name=PARTITION_COLUMN,
        )
    )


def identifier(settings: Settings, table: str) -> tuple[str, str]:
    return (settings.catalog_namespace, table)


def ensure_table(catalog: Catalog, dest: ObjectStore, settings: Settings, table: str) -> Table:
    """The table, created the first time (and its namespace, only if the catalog has none of that name).

    The namespace is created only when creating the table says it is missing, so a
    publisher allowed to create tables in one existing database (the AWS template's:
    no `glue:CreateDatabase`) never asks for more.
    """
    name = identifier(settings, table)
    try:
        return catalog.load_table(name)
    except NoSuchTableError:
        pass
    try:
        return _create_table(catalog, dest, table, name)
    except NoSuchNamespaceError:
        with contextlib.suppress(NamespaceAlreadyExistsError):
            catalog.create_namespace(settings.catalog_namespace)
    return _create_table(catalog, dest, table, name)


def _create_table(catalog: Catalog, dest: ObjectStore, table: str, name: tuple[str, str]) -> Table:
    schema = iceberg_schema(table)
    properties = {
        **TABLE_PROPERTIES,
        "schema.name-mapping.default": create_mapping_from_schema(schema).model_dump_json(),
    }
    log.info("creating Iceberg table %s.%s at %s", *name, table_location(dest, table))
    return catalog.create_table_if_not_exists(
        name,
        schema,
        location=table_location(dest, table),
        partition_spec=partition_spec(table),
        properties=properties,
    )


def drop_table(catalog: Catalog, settings: Settings, table: str) -> None:
    """Forget the table's catalog entry (never its data files: they are the ledger's)."""
    with contextlib.suppress(NoSuchTableError):
        catalog.drop_table(identifier(settings, table))
