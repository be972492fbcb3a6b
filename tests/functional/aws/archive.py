"""Read an archive in a bucket back the way a user would, and compare archives."""

from __future__ import annotations

from pathlib import Path

import boto3.session

from archiver.local.moto_server import MOTO_CREDENTIALS
from tests.functional.readback import data_files, read_rows

TABLES = ("jobs", "job_lines", "activity", "quarantine")


def s3_client(endpoint: str) -> object:
    return boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=endpoint)


def download_tree(endpoint: str, bucket: str, prefix: str, root: Path) -> Path:
    """Every object under `prefix` into `root`, keyed by its path below the prefix."""
    client = boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=endpoint)
    root.mkdir(parents=True, exist_ok=True)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = root / item["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    client.close()
    return root


def table_rows(root: Path) -> dict[str, list[str]]:
    """Every table's rows, as sorted reprs (file names and row order ignored)."""
    return {table: sorted(map(repr, read_rows(root, table))) for table in TABLES}


def assert_same_archive(got: Path, clean: Path) -> None:
    """The same rows in every table as the clean archive, and no data file a reader should not see."""
    have, want = table_rows(got), table_rows(clean)
    for table in TABLES:
        assert have[table] == want[table], (table, len(have[table]), len(want[table]))
    assert all(name.endswith(".parquet") for name in data_files(got))
