"""Opening the archive's tables asks the catalog for no more than it needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.typedef import Identifier, Properties

from archiver.config import Settings
from archiver.engine.publish.catalog import ensure_table
from archiver.storage.location import open_store
from archiver.storage.store import ObjectStore


class NoNewDatabases(SqlCatalog):
    """A catalog whose principal may create tables in existing namespaces, never a namespace
    (the AWS template's publisher: glue:CreateTable on its database, no glue:CreateDatabase)."""

    asked: list[str]

    def create_namespace(self, namespace: str | Identifier, properties: Properties | None = None) -> None:
        self.asked.append(str(namespace))
        raise PermissionError("AccessDeniedException: not authorized to perform glue:CreateDatabase")


def local_dest(folder: Path) -> ObjectStore:
    return asyncio.run(open_store(str(folder), create=True))


def test_a_table_in_an_existing_namespace_is_created_without_asking_to_create_the_namespace(
    tmp_path: Path,
) -> None:
    # GIVEN a catalog that holds the namespace already and refuses to create namespaces
    catalog = NoNewDatabases("c", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    catalog.asked = []
    SqlCatalog.create_namespace(catalog, "archiver_stack")
    settings = Settings(catalog="c", catalog_namespace="archiver_stack")
    # WHEN the publisher opens the jobs table for the first time
    table = ensure_table(catalog, local_dest(tmp_path / "dest"), settings, "jobs")
    # THEN it is created in that namespace, and no namespace was asked for
    assert table.name() == ("archiver_stack", "jobs")
    assert catalog.asked == []


def test_a_missing_namespace_is_created_with_the_first_table(tmp_path: Path) -> None:
    # GIVEN a catalog with no namespace at all
    catalog = SqlCatalog("c", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    settings = Settings(catalog="c", catalog_namespace="archiver")
    # WHEN the publisher opens a table, then another
    ensure_table(catalog, local_dest(tmp_path / "dest"), settings, "jobs")
    ensure_table(catalog, local_dest(tmp_path / "dest"), settings, "activity")
    # THEN the namespace exists and holds both
    assert sorted(catalog.list_tables("archiver")) == [("archiver", "activity"), ("archiver", "jobs")]


def test_an_existing_table_is_loaded_not_created_again(tmp_path: Path) -> None:
    # GIVEN a catalog where the publisher created the quarantine table
    catalog = SqlCatalog("c", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    settings = Settings(catalog="c")
    first = ensure_table(catalog, local_dest(tmp_path / "dest"), settings, "quarantine")
    # WHEN it opens it again
    again = ensure_table(catalog, local_dest(tmp_path / "dest"), settings, "quarantine")
    # THEN it is the same table, at the same metadata
    assert again.metadata_location == first.metadata_location
