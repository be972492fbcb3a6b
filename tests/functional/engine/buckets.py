"""Hand-made job objects in buckets of the moto server, runs over them, and archives read back.

The hole tests need exact control over keys, ids and versions (a 21-digit id, the
same job id in two workspaces, a version that must win again), so their objects
are written here by hand rather than drawn from `archiver.local.synth`. Bodies are
bare job-history objects, the simplest shape the archiver reads.

Archives are read two ways:

- the committed view: the rows of the data files the committed ledger heads name
  (what the archive holds, whatever else lies in the folders during a grace period);
- the reader's view: every `*.parquet` a user's glob over the table folders sees.

Both are read with pyarrow so that they compare; tests read tables with DuckDB
(`tests.functional.readback`) where what a user sees is the point.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3.session

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.api import RunReport, compact, compact_keys
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket
from archiver.storage.s3 import S3Store
from archiver.storage.store import ObjectStore
from tests.functional.readback import data_files, file_rows

TABLES = ("jobs", "job_lines", "activity", "quarantine")
SETTINGS = Settings(concurrency=8, retire_grace_seconds=0)
Clock = Callable[[], dt.datetime]


# --------------------------------------------------------------------------- objects


def job_body(
    job_id: str | int,
    *,
    status: str = "succeeded",
    title: str = "sync contacts",
    recipe_id: int = 234,
    completed_at: str | None = "2024-08-20T10:00:00Z",
    started_at: str = "2024-08-20T09:00:00Z",
    lines: int = 2,
) -> bytes:
    """A bare job-history object; an int `job_id` is written as a JSON integer, digit for digit."""
    job: dict[str, Any] = {
        "id": job_id,
        "recipe_id": recipe_id,
        "status": status,
        "title": title,
        "started_at": started_at,
        "completed_at": completed_at,
        "lines": [
            {
                "recipe_line_number": index,
                "adapter_name": "salesforce",
                "adapter_operation": "search_records",
                "input": {"step": index},
                "output": {"found": index},
            }
            for index in range(lines)
        ],
    }
    return json.dumps(job).encode()


def standard_key(user: str, recipe: str, day: str, job_id: str, stamp: str, status: str) -> str:
    """`user/jobs/recipe/YYYYMMDD/job_id/user-recipe-job_id-STAMP-status.json`."""
    return f"{user}/jobs/{recipe}/{day}/{job_id}/{user}-{recipe}-{job_id}-{stamp}-{status}.json"


def embedded_key(user: str, recipe: str, day: str, job_id: int, stamp: str, status: str) -> str:
    """The embedded-partner layout: the id left-padded to 21 digits, in seven 3-digit folders."""
    digits = f"{job_id:021d}"
    folders = "/".join(digits[i : i + 3] for i in range(0, 21, 3))
    return f"{user}/jobs/{recipe}/{day}/{folders}/{user}-{recipe}-{job_id}-{stamp}-{status}.json"


# --------------------------------------------------------------------------- buckets


def new_bucket(endpoint: str, kind: str = "holes") -> str:
    bucket = f"{kind}-{uuid.uuid4().hex[:16]}"
    create_bucket(endpoint, bucket)
    return bucket


def _client(endpoint: str) -> Any:
    return boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=endpoint)


def put_objects(endpoint: str, bucket: str, objects: Mapping[str, bytes]) -> dict[str, str]:
    """PutObject each key; returns key -> ETag (without quotes)."""
    client = _client(endpoint)
    try:
        return {
            key: client.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
            for key, body in objects.items()
        }
    finally:
        client.close()


def delete_objects(endpoint: str, bucket: str, keys: Iterable[str]) -> None:
    client = _client(endpoint)
    try:
        for key in keys:
            client.delete_object(Bucket=bucket, Key=key)
    finally:
        client.close()


def bucket_keys(endpoint: str, bucket: str, prefix: str = "") -> dict[str, str]:
    """key -> ETag of everything under `prefix`."""
    client = _client(endpoint)
    try:
        found: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update((item["Key"], item["ETag"].strip('"')) for item in page.get("Contents", ()))
        return found
    finally:
        client.close()


def get_object(endpoint: str, bucket: str, key: str) -> bytes:
    client = _client(endpoint)
    try:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    finally:
        client.close()


def download(endpoint: str, bucket: str, root: Path) -> Path:
    """Copy a whole bucket (ledger included) into a folder, key = relative path."""
    client = _client(endpoint)
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", ()):
                path = root.joinpath(*item["Key"].split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    finally:
        client.close()
    root.mkdir(parents=True, exist_ok=True)
    return root


# --------------------------------------------------------------------------- runs


def s3_store(bucket: str, endpoint: str, *, max_attempts: int = 8) -> S3Store:
    return S3Store(bucket, credentials=MOTO_CREDENTIALS, endpoint_url=endpoint, max_attempts=max_attempts)


def run_compact(
    source: ObjectStore, dest: ObjectStore, settings: Settings = SETTINGS, *, clock: Clock | None = None
) -> RunReport:
    """One `compact` over the stores (closed afterwards; their `counts` stay readable)."""

    async def main() -> RunReport:
        try:
            if clock is None:
                return await compact(source, dest, settings)
            return await compact(source, dest, settings, clock=clock)
        finally:
            await source.close()
            await dest.close()

    return asyncio.run(main())


def run_compact_keys(
    source: ObjectStore, dest: ObjectStore, keys: list[str], settings: Settings = SETTINGS
) -> RunReport:
    async def main() -> RunReport:
        try:
            return await compact_keys(source, dest, settings, keys)
        finally:
            await source.close()
            await dest.close()

    return asyncio.run(main())


def archive(
    endpoint: str, source: str, dest: str, settings: Settings = SETTINGS, **options: Any
) -> RunReport:
    """`compact` bucket to bucket, straight to the moto server."""
    return run_compact(s3_store(source, endpoint), s3_store(dest, endpoint), settings, **options)


# --------------------------------------------------------------------------- reading archives back


def heads(root: Path, *, skip_broken: bool = False) -> dict[str, ledger.Head]:
    """Every committed ledger head of a downloaded archive by unit; `skip_broken` skips unreadable ones."""
    found: dict[str, ledger.Head] = {}
    for path in sorted((root / ledger.LEDGER_ROOT).glob(f"*/{ledger.HEAD_NAME}")):
        try:
            head = ledger.decode_head(path.read_bytes())
        except ledger.LedgerFormatError:
            if skip_broken:
                continue
            raise
        found[path.parent.name] = head
    return found


def committed_files(root: Path, *, skip_broken: bool = False) -> set[str]:
    return {key for head in heads(root, skip_broken=skip_broken).values() for key in head.file_keys()}


def committed_rows(root: Path, table: str, *, skip_broken: bool = False) -> list[dict[str, Any]]:
    """The rows of `table` in the files the committed heads name (every named file must exist)."""
    return [
        row
        for key in sorted(committed_files(root, skip_broken=skip_broken))
        if key.split("/", 1)[0] == table
        for row in file_rows(root / key)
    ]


def canonical(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Rows in a comparable form: each row's sorted items as text, the list sorted."""
    return sorted(repr(sorted(row.items())) for row in rows)


def committed_archive(root: Path) -> dict[str, list[str]]:
    """Every table of the committed view, canonical."""
    return {table: canonical(committed_rows(root, table)) for table in TABLES}


def visible_files(root: Path) -> list[str]:
    """Every `*.parquet` a reader's glob over the table folders meets."""
    return [key for key in data_files(root) if key.endswith(".parquet")]


def visible_archive(root: Path) -> dict[str, list[str]]:
    """Every table as a reader globbing `*.parquet` sees it, canonical (read like the committed view)."""
    files = visible_files(root)
    return {
        table: canonical(
            row for key in files if key.split("/", 1)[0] == table for row in file_rows(root / key)
        )
        for table in TABLES
    }


def differences(got: dict[str, list[str]], want: dict[str, list[str]]) -> dict[str, str]:
    """Per table with a difference: how many rows are missing and how many are extra."""
    out: dict[str, str] = {}
    for table in TABLES:
        have, need = Counter(got[table]), Counter(want[table])
        if have != need:
            out[table] = f"{sum((need - have).values())} missing, {sum((have - need).values())} extra"
    return out


def jobs_by_id(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """`jobs` rows by (user_id, job_id); fails if a job has two rows."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        job = (row["user_id"], row["job_id"])
        assert job not in found, f"job {job} has two rows"
        found[job] = row
    return found


def clean_archive(endpoint: str, source: str, folder: Path, settings: Settings = SETTINGS) -> Path:
    """One clean run over the source as it is now, into a new bucket, downloaded into `folder`."""
    dest = new_bucket(endpoint, "clean")
    report = archive(endpoint, source, dest, settings)
    assert report.failures == [], report.failures
    return download(endpoint, dest, folder)


def assert_same_as_clean(endpoint: str, source: str, dest: str, scratch: Path) -> None:
    """The committed view of `dest` holds exactly what one clean run over `source` holds,
    and a reader's glob sees exactly the committed files."""
    got = download(endpoint, dest, scratch / "got")
    want = clean_archive(endpoint, source, scratch / "want")
    assert differences(committed_archive(got), committed_archive(want)) == {}
    assert differences(visible_archive(got), committed_archive(got)) == {}
