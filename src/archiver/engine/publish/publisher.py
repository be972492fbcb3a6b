"""`archiver publish`: bring every Iceberg table's current snapshot to the ledger's state.

One publisher at a time commits (unit workers never do, so catalog commits do not
contend): after a CLI run, after a backfill, on a schedule for the SQS path. Each
attempt reads the tables first and the ledger second, so what it commits is never
older than what a rival publisher committed before it; a commit a rival beat is
recomputed from a fresh read, a bounded number of times, each retry logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time

from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from archiver.config import Settings
from archiver.engine.publish import catalog as catalogs
from archiver.engine.publish import expiry, superseded
from archiver.engine.publish.live import LedgerState, read_ledger
from archiver.engine.publish.mode import is_local
from archiver.engine.publish.reading import write_version_hint
from archiver.engine.publish.report import PublishReport
from archiver.engine.publish.tables import commit_change, current_files, ensure_properties
from archiver.formats.schema import TABLES
from archiver.storage.store import ObjectStore

COMMIT_ATTEMPTS = 5
BACKOFF_SECONDS = 0.2

log = logging.getLogger(__name__)


async def publish(
    dest: ObjectStore, settings: Settings, *, rebuild: bool = False, now: dt.datetime | None = None
) -> PublishReport:
    """Publish the ledger's live files as the archive's Iceberg tables (see the module)."""
    started = time.perf_counter()
    before = dest.counts.as_report()
    report = PublishReport(rebuilt=rebuild)
    catalog = await asyncio.to_thread(catalogs.open_catalog, dest, settings)
    if catalog is None:
        report.notes.append(
            "no Iceberg catalog: an S3 archive publishes tables only with ARCHIVER_CATALOG set; "
            "superseded files are deleted right after each commit"
        )
    else:
        report.catalog = settings.catalog or f"{catalogs.EMBEDDED_CATALOG_NAME} (SQLite in DEST)"
        await _publish(catalog, dest, settings, report, rebuild, now or dt.datetime.now(dt.UTC))
    after = dest.counts.as_report()
    report.requests = {kind: after[kind] - before[kind] for kind in after}
    report.seconds = time.perf_counter() - started
    return report


async def _publish(
    catalog: Catalog,
    dest: ObjectStore,
    settings: Settings,
    report: PublishReport,
    rebuild: bool,
    now: dt.datetime,
) -> None:
    base = catalogs.archive_location(dest)
    tables = await asyncio.to_thread(_open_tables, catalog, dest, settings, rebuild)
    pending = set(tables)
    state = LedgerState()
    for attempt in range(COMMIT_ATTEMPTS):
        current = {name: await asyncio.to_thread(current_files, tables[name], base) for name in pending}
        state = await read_ledger(dest)
        await superseded.mark_published(dest, state, set().union(*(set(files) for files in current.values())))
        for name in sorted(pending):
            try:
                change = await asyncio.to_thread(
                    commit_change, tables[name], base, current[name], state.live(name), {}
                )
            except CommitFailedException as error:
                report.commit_conflicts += 1
                log.warning(
                    "publishing %s: a rival commit came first (attempt %d of %d): %s",
                    name,
                    attempt + 1,
                    COMMIT_ATTEMPTS,
                    str(error).splitlines()[0] if str(error) else "",
                )
                tables[name] = await asyncio.to_thread(
                    catalog.load_table, catalogs.identifier(settings, name)
                )
                continue
            report.tables[name] = change
            report.commits += int(change.committed)
            pending.discard(name)
        if not pending:
            break
        await asyncio.sleep(BACKOFF_SECONDS * (2**attempt) * (1 + random.random()))
    for name in sorted(pending):
        report.failures.append(
            {
                "table": name,
                "error": f"kept losing to rival commits ({COMMIT_ATTEMPTS} attempts)",
                "kind": "CommitFailedException",
            }
        )
    if is_local(dest):
        for name in sorted(report.tables):
            await asyncio.to_thread(write_version_hint, await asyncio.to_thread(tables[name].refresh))
    known = {name: change.files for name, change in report.tables.items()}
    report.files_deleted += await superseded.settle(dest, state, known, history_gone=rebuild)
    for name in sorted(known):
        await _expire(tables[name], dest, base, settings, now, set(known[name]), report)


def _open_tables(catalog: Catalog, dest: ObjectStore, settings: Settings, rebuild: bool) -> dict[str, Table]:
    if rebuild:
        for name in TABLES:
            catalogs.drop_table(catalog, settings, name)
    return {name: ensure_properties(catalogs.ensure_table(catalog, dest, settings, name)) for name in TABLES}


async def _expire(
    table: Table,
    dest: ObjectStore,
    base: str,
    settings: Settings,
    now: dt.datetime,
    live: set[str],
    report: PublishReport,
) -> None:
    table = await asyncio.to_thread(table.refresh)
    plan = await asyncio.to_thread(
        expiry.plan_expiry, table, base, now, settings.snapshot_retention_seconds, live
    )
    if not plan.snapshot_ids:
        return
    if plan.data_keys:
        await dest.delete(plan.data_keys)
        report.files_deleted += len(plan.data_keys)
    try:
        await asyncio.to_thread(expiry.commit_expiry, table, plan)
    except CommitFailedException:
        report.commit_conflicts += 1
        log.warning(
            "expiring snapshots of %s: a rival commit came first; the next publish expires them", table.name()
        )
        return
    report.snapshots_expired += len(plan.snapshot_ids)
    await asyncio.to_thread(expiry.delete_metadata, table, plan.metadata_paths)
