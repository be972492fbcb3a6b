"""`archiver replay`: a folder of objects through a real S3 API on loopback, then back to disk.

The folder is uploaded to a bucket on an embedded moto server, `compact` runs
against it over HTTP exactly as it would against AWS, and the archive bucket is
copied into a local folder, whose Iceberg tables are then built from its ledger
(local paths, the folder's own SQLite catalog).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from archiver.config import Settings
from archiver.engine import api
from archiver.engine.api import RunReport
from archiver.errors import ConfigError
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket, running_moto_server, upload_tree
from archiver.storage.localfs import LocalStore
from archiver.storage.location import open_store
from archiver.storage.store import ObjectStore

logger = logging.getLogger(__name__)

SOURCE_BUCKET = "workato-audit-logs"
ARCHIVE_BUCKET = "workato-archive"
ARCHIVER_FOLDER = "_archiver"
"""Where an archive keeps the archiver's own state (DEST/_archiver/, as the contract says)."""


def replay(source_dir: Path, out_dir: Path, settings: Settings) -> RunReport:
    """Archive `source_dir` through an embedded S3 server into `out_dir`."""
    if not source_dir.is_dir():
        raise ConfigError(f"not a folder: {source_dir}")
    _prepare_output(out_dir)
    with running_moto_server() as endpoint:
        create_bucket(endpoint, SOURCE_BUCKET)
        create_bucket(endpoint, ARCHIVE_BUCKET)
        uploaded = upload_tree(endpoint, SOURCE_BUCKET, source_dir)
        logger.info(
            "uploaded %d objects from %s to s3://%s/ on %s", uploaded, source_dir, SOURCE_BUCKET, endpoint
        )
        return asyncio.run(_archive_and_download(endpoint, out_dir, settings))


def _prepare_output(out_dir: Path) -> None:
    """Replace an earlier archive in `out_dir`, but never a folder holding something else."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / ARCHIVER_FOLDER).is_dir():
            raise ConfigError(f"{out_dir} exists and does not hold an archive; choose another --out")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


async def _archive_and_download(endpoint: str, out_dir: Path, settings: Settings) -> RunReport:
    source = await open_store(
        f"s3://{SOURCE_BUCKET}/",
        concurrency=settings.concurrency,
        endpoint_url=endpoint,
        credentials=MOTO_CREDENTIALS,
    )
    dest = await open_store(
        f"s3://{ARCHIVE_BUCKET}/",
        concurrency=settings.concurrency,
        endpoint_url=endpoint,
        credentials=MOTO_CREDENTIALS,
    )
    try:
        report = await api.compact(source, dest, settings)
        local = LocalStore(out_dir)
        copied = await copy_store(dest, local)
        logger.info("copied %d archive objects from s3://%s/ to %s", copied, ARCHIVE_BUCKET, out_dir)
        # OUTDIR is a local archive: its tables, in its own catalog with local paths, from its ledger.
        published = await api.publish_store(local, replace(settings, catalog=None), rebuild=True)
        report.publish = published.as_dict()
        report.failures.extend(published.failures)
        return report
    finally:
        await source.close()
        await dest.close()


async def copy_store(source: ObjectStore, target: ObjectStore) -> int:
    """Copy every object of `source` into `target` (a LocalStore refuses keys escaping its folder)."""
    copied = 0
    async for page in source.list_pages(""):
        for info in page.objects:
            await target.put(info.key, (await source.get(info.key)).body)
            copied += 1
    return copied
