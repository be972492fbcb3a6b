"""Fixtures for the Lambda handlers on a moto server: a source bucket holding a corpus, an archive bucket."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from archiver.aws.runtime import close_runtime
from archiver.config import Settings
from archiver.engine import api
from archiver.local.moto_server import create_bucket, upload_tree
from archiver.local.synth import CorpusSummary, write_corpus
from tests.functional.aws.archive import download_tree
from tests.functional.aws.catalogs import configure_catalog

START = dt.date(2024, 8, 30)
DAYS = 6
SOURCE_PREFIX = "workato/"
DEST_PREFIX = "archive/"


@dataclass(frozen=True, slots=True)
class Deployed:
    """A source bucket holding the corpus, an empty archive bucket, and the environment pointing at them."""

    endpoint: str
    source_bucket: str
    dest_bucket: str
    corpus: CorpusSummary
    corpus_root: Path
    keys: tuple[str, ...]  # every corpus key, relative to the source prefix

    @property
    def source_url(self) -> str:
        return f"s3://{self.source_bucket}/{SOURCE_PREFIX}"

    @property
    def dest_url(self) -> str:
        return f"s3://{self.dest_bucket}/{DEST_PREFIX}"


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CorpusSummary]:
    root = tmp_path_factory.mktemp("aws-corpus")
    summary = write_corpus(root, jobs=30, seed=8, start=START, days=DAYS)
    return root, summary


@pytest.fixture(autouse=True)
def fresh_runtime() -> Iterator[None]:
    """Each test starts and ends with no cached stores (the environment differs between tests)."""
    close_runtime()
    yield
    close_runtime()


@pytest.fixture
def deployed(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, corpus_root: tuple[Path, CorpusSummary]
) -> Deployed:
    root, summary = corpus_root
    source_bucket, dest_bucket = f"src-{uuid.uuid4().hex[:12]}", f"arc-{uuid.uuid4().hex[:12]}"
    create_bucket(aws_env, source_bucket)
    create_bucket(aws_env, dest_bucket)
    upload_tree(aws_env, source_bucket, root, SOURCE_PREFIX)
    keys = tuple(sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()))
    monkeypatch.setenv("ARCHIVER_SOURCE", f"s3://{source_bucket}/{SOURCE_PREFIX}")
    monkeypatch.setenv("ARCHIVER_DEST", f"s3://{dest_bucket}/{DEST_PREFIX}")
    monkeypatch.setenv("ARCHIVER_CONCURRENCY", "8")
    # Superseded files go at once, so a reader's view is exactly the committed one (the grace
    # period, which keeps them for queries in flight, has tests of its own).
    monkeypatch.setenv("ARCHIVER_RETIRE_GRACE_SECONDS", "0")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    return Deployed(aws_env, source_bucket, dest_bucket, summary, root, keys)


@pytest.fixture
def clean_archive(deployed: Deployed, tmp_path: Path) -> Path:
    """What one plain `compact` of the whole source makes, downloaded to a folder."""
    bucket = f"ref-{uuid.uuid4().hex[:12]}"
    create_bucket(deployed.endpoint, bucket)

    async def run() -> None:
        async with api.open_stores(deployed.source_url, f"s3://{bucket}/", Settings(concurrency=8)) as stores:
            source, dest = stores
            assert dest is not None
            await api.compact(source, dest, Settings(concurrency=8))

    asyncio.run(run())
    return download_tree(deployed.endpoint, bucket, "", tmp_path / "clean")


@pytest.fixture
def with_catalog(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> str:
    """The deployment with the template's Glue catalog settings (see `catalogs`); returns its database."""
    return configure_catalog(deployed.endpoint, monkeypatch)
