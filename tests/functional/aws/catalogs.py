"""The template's Glue catalog on the moto server: its database, its settings, what readers see."""

from __future__ import annotations

import uuid
from typing import Any

import boto3.session
import pytest
from pyiceberg.catalog import Catalog, load_catalog

from archiver.local.moto_server import MOTO_CREDENTIALS


def glue_database(endpoint: str) -> str:
    """A new Glue database on the moto server, as the stack's ArchiveDatabase."""
    name = f"archiver_{uuid.uuid4().hex[:10]}"
    glue: Any = boto3.session.Session(**MOTO_CREDENTIALS).client("glue", endpoint_url=endpoint)
    glue.create_database(DatabaseInput={"Name": name})
    return name


def configure_catalog(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The template's catalog settings (every function's, and the publisher's own); returns the database.

    The database exists before the first publish (the stack creates it); the publisher creates the tables.
    """
    database = glue_database(endpoint)
    monkeypatch.setenv("ARCHIVER_CATALOG", "glue")
    monkeypatch.setenv("ARCHIVER_CATALOG_NAMESPACE", database)
    monkeypatch.setenv("PYICEBERG_CATALOG__GLUE__TYPE", "glue")
    return database


def reader(endpoint: str) -> Catalog:
    """The Glue catalog as a reader opens it with pyiceberg."""
    endpoints = {"glue.endpoint": endpoint, "s3.endpoint": endpoint, "s3.region": "us-east-1"}
    return load_catalog("reader", type="glue", **endpoints)


def table_rows(catalog: Catalog, database: str, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = catalog.load_table((database, table)).scan().to_arrow().to_pylist()
    return rows
