"""The Iceberg tables' schemas carry the same field ids as the data files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from archiver.engine.publish.catalog import iceberg_schema
from archiver.formats.schema import FIELD_IDS, FILE_SCHEMAS, TABLES


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_new_table_gets_the_field_ids_its_files_carry(tmp_path: Path, table: str) -> None:
    # GIVEN a SQL catalog, which assigns fresh ids to the columns of a new table
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("archiver")
    # WHEN the table is created from its schema
    created = catalog.create_table(("archiver", table), iceberg_schema(table))
    # THEN every column has the id the data files give it (ids are contiguous from 1)
    assert sorted(FIELD_IDS[table].values()) == list(range(1, len(FIELD_IDS[table]) + 1))
    ids = {field.name: field.field_id for field in created.schema().fields}
    assert ids == FIELD_IDS[table]
    assert set(ids) == set(FILE_SCHEMAS[table].names)
