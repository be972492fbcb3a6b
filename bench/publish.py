"""The cost of publishing the Iceberg tables: seconds and requests of a publish after a run, and of a no-op.

`publish_cost(corpus, batch)` archives the corpus (the held-out 20k-object one in `make
bench`) from one bucket of a moto server into another, without publishing, then times
`archiver publish` twice against a SQL catalog (SQLite in a scratch folder, tables in
the archive bucket): the first publish registers every file, the second must commit
nothing. With `batch` (a day of new objects, the size of one SQS batch), those objects
are then archived and published too: the steady-state publish of the SQS path, the
"publish" term of its freshness. Every HTTP request a publish makes (the archiver's own
ledger reads and writes, and pyiceberg's metadata, manifests and Parquet footers) is
counted where moto answers it, so the counts are what S3 would bill.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from archiver.config import Settings, settings_from_env
from archiver.engine import api
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket, running_moto_server, upload_tree
from archiver.storage.location import open_store

SOURCE, DEST = "bench-publish-source", "bench-publish-archive"
CATALOG = "bench"


class RequestCounter:
    """Counts, by HTTP method, every request the in-process moto server answers (a WSGI wrapper)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self.counts = dict(self.counts), Counter()
        return counts

    @contextmanager
    def installed(self) -> Iterator[RequestCounter]:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication

        original = DomainDispatcherApplication.__call__
        counter = self

        def counted(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
            with counter._lock:
                counter.counts[str(environ.get("REQUEST_METHOD"))] += 1
            return original(app, environ, start_response)

        DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]
        try:
            yield self
        finally:
            DomainDispatcherApplication.__call__ = original  # type: ignore[method-assign]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def publish_cost(corpus: Path, batch: Path | None = None) -> dict[str, Any]:
    """Seconds and requests (by HTTP method) of a publish after archiving `corpus`, of a no-op publish,
    and (with `batch`) of a publish after archiving `batch` on top."""
    with (
        tempfile.TemporaryDirectory(prefix="archiver-bench-publish-") as scratch,
        RequestCounter().installed() as proxy,
        running_moto_server() as moto,
    ):
        create_bucket(moto, SOURCE)
        create_bucket(moto, DEST)
        objects = upload_tree(moto, SOURCE, corpus)
        environment = {
            "AWS_ENDPOINT_URL": moto,
            "AWS_ACCESS_KEY_ID": MOTO_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": MOTO_CREDENTIALS["aws_secret_access_key"],
            "AWS_REGION": MOTO_CREDENTIALS["region_name"],
            "AWS_DEFAULT_REGION": MOTO_CREDENTIALS["region_name"],
            "ARCHIVER_CATALOG": CATALOG,
            f"PYICEBERG_CATALOG__{CATALOG.upper()}__TYPE": "sql",
            f"PYICEBERG_CATALOG__{CATALOG.upper()}__URI": f"sqlite:///{scratch}/catalog.db",
            f"PYICEBERG_CATALOG__{CATALOG.upper()}__WAREHOUSE": f"s3://{DEST}/",
        }
        with _environment(environment):
            settings = settings_from_env()
            run = asyncio.run(_archive(replace(settings, catalog=None)))
            proxy.take()
            first = _timed_publish(settings, proxy)
            noop = _timed_publish(settings, proxy)
            after_batch: dict[str, Any] = {}
            if batch is not None:
                after_batch["objects"] = upload_tree(moto, SOURCE, batch)
                # with the catalog named, as a unit worker of a deployment with tables runs
                after_batch["files"] = asyncio.run(_archive(settings)).files_written
                proxy.take()
                after_batch.update(_timed_publish(settings, proxy))
    return {
        "objects": objects,
        "files": run.files_written,
        "publish": first,
        "noop_publish": noop,
        **({"batch_publish": after_batch} if after_batch else {}),
    }


async def _archive(settings: Settings) -> api.RunReport:
    source = await open_store(f"s3://{SOURCE}/", concurrency=settings.concurrency)
    dest = await open_store(f"s3://{DEST}/", concurrency=settings.concurrency)
    try:
        return await api.compact(source, dest, settings)
    finally:
        await source.close()
        await dest.close()


def _timed_publish(settings: Settings, proxy: RequestCounter) -> dict[str, Any]:
    started = time.perf_counter()
    report = asyncio.run(api.publish(f"s3://{DEST}/", settings))
    seconds = time.perf_counter() - started
    requests = proxy.take()
    return {
        "seconds": round(seconds, 2),
        "requests": requests,
        "requests_total": sum(requests.values()),
        "commits": report.commits,
        "files_added": sum(int(str(change.as_dict()["files_added"])) for change in report.tables.values()),
        "failures": report.failures,
    }


if __name__ == "__main__":
    import json
    import sys

    print(
        json.dumps(
            publish_cost(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None), indent=2
        )
    )
