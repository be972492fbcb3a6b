"""The engine's public API: what the command line and the Lambda handlers call, and nothing else.

Entry points open stores with `open_stores`, then call `compact`, `compact_keys`,
`plan` or `verify`, and turn the report they get back into their own output.
`publish` brings the archive's Iceberg tables to the ledger's state (a handler calls
`publish(dest_url, settings)` after its work, or on its own schedule).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from archiver.config import Settings
from archiver.engine.activity import ActivityLedger
from archiver.engine.collector import fewer_collections
from archiver.engine.context import ProgressHook
from archiver.engine.erasures import load_erasure
from archiver.engine.forgetting import ForgetReport, forget_window
from archiver.engine.listing import ListingOptions
from archiver.engine.planner import PLANS_PREFIX, PlannedUnit, plan_units, write_manifest
from archiver.engine.policies import current_policy, with_policy
from archiver.engine.processes import compact_in_processes
from archiver.engine.publish.mode import tables_published
from archiver.engine.publish.report import PublishError, PublishReport
from archiver.engine.report import RunReport
from archiver.engine.rewriting import RedactReport, redact_window
from archiver.engine.run import Clock, Run, cpu_count, utc_now
from archiver.engine.stores import check_dest_apart, open_stores, open_url
from archiver.engine.units import UnitScope, shard_key
from archiver.engine.verify import VerifyReport
from archiver.engine.verify import verify as verify_window
from archiver.engine.writer import BufferBudget
from archiver.errors import ArchiverError
from archiver.formats.erasure import Erasure
from archiver.formats.records import ActivityEvent
from archiver.formats.redaction import redact_row
from archiver.storage.location import is_within
from archiver.storage.store import ObjectInfo, ObjectStore

__all__ = [
    "PLANS_PREFIX",
    "ActivitySink",
    "ForgetReport",
    "PlannedUnit",
    "PublishError",
    "PublishReport",
    "RedactReport",
    "RunReport",
    "UnitScope",
    "VerifyReport",
    "activity_sink",
    "check_dest_apart",
    "compact",
    "compact_keys",
    "compact_urls",
    "forget",
    "forget_url",
    "is_within",
    "open_stores",
    "plan",
    "publish",
    "publish_store",
    "publishes",
    "read_table",
    "redact",
    "shard_key",
    "verify",
    "with_policy",
    "write_plan",
]


async def compact(
    source: ObjectStore,
    dest: ObjectStore,
    settings: Settings,
    *,
    scope: UnitScope | None = None,
    progress: ProgressHook | None = None,
    time_left: Callable[[], float] | None = None,
    clock: Clock = utc_now,
) -> RunReport:
    """Archive the settings' window (or the lookback) of `source` into `dest`, exactly once.

    With `time_left` (seconds), no new unit starts once less than the settings'
    reserve is left; the report's `units_left` names what the next run continues.
    """
    if scope is not None and scope.unit:
        settings = scope.narrow(settings)
    run = Run(source, dest, settings, scope=scope, progress=progress, time_left=time_left, clock=clock)
    with fewer_collections():
        return await run.run()


async def compact_urls(
    source_url: str,
    dest_url: str,
    settings: Settings,
    *,
    scope: UnitScope | None = None,
    progress: ProgressHook | None = None,
    clock: Clock = utc_now,
) -> RunReport:
    """`compact` from URLs, on every core: with several CPUs, one shard of the days per process.

    One process (and the progress hook) when `ARCHIVER_PARSE_WORKERS` is 1 or the
    machine has one CPU, or when a scope names a unit or a shard already. A DEST that
    is SOURCE or lies inside it is refused first (`ConfigError`).
    """
    check_dest_apart(source_url, dest_url)
    whole = scope is None or scope.everything
    workers = settings.parse_workers or cpu_count()
    with fewer_collections():  # the publish too: importing pyiceberg makes a great many objects
        if workers > 1 and whole:
            report = await compact_in_processes(source_url, dest_url, settings, workers, clock(), progress)
        else:
            async with open_stores(source_url, dest_url, settings) as (source, dest):
                assert dest is not None
                report = await compact(source, dest, settings, scope=scope, progress=progress, clock=clock)
        if whole and publishes(dest_url, settings):
            await _publish_after(report, dest_url, settings)
    return report


async def _publish_after(report: RunReport, dest_url: str, settings: Settings) -> None:
    """A whole run ends by publishing the tables (a unit or shard of a larger run leaves it to its driver)."""
    try:
        published = await publish(dest_url, settings)
    except ArchiverError as error:
        report.failures.append({"publish": dest_url, "error": str(error), "kind": type(error).__name__})
        return
    report.publish = published.as_dict()
    report.failures.extend(published.failures)


def publishes(dest_url: str, settings: Settings) -> bool:
    """Whether the archive at `dest_url` has Iceberg tables: a catalog is named, or DEST is local."""
    return settings.catalog is not None or not dest_url.startswith("s3://")


async def publish(
    dest_url: str, settings: Settings, *, rebuild: bool = False, clock: Clock = utc_now
) -> PublishReport:
    """Bring the Iceberg tables of the archive at `dest_url` to its ledger's state.

    Idempotent: a second call commits nothing. `rebuild` recreates the tables from the
    ledger alone. An S3 archive with no catalog named publishes nothing and says so in
    the report's `notes`. Usable from a Lambda handler (one publisher at a time).
    """
    dest = await open_url(dest_url, settings, create=False)
    try:
        return await publish_store(dest, settings, rebuild=rebuild, clock=clock)
    finally:
        await dest.close()


def read_table(dest: ObjectStore, settings: Settings, table: str, snapshot_id: int | None = None) -> pa.Table:
    """A published table's rows through its catalog (current snapshot, or `snapshot_id`)."""
    from archiver.engine.publish.reading import read_table as read_published

    return read_published(dest, settings, table, snapshot_id)


async def publish_store(
    dest: ObjectStore, settings: Settings, *, rebuild: bool = False, clock: Clock = utc_now
) -> PublishReport:
    """`publish` for an open destination store (`clock` decides which snapshots are past the retention)."""
    from archiver.engine.publish.publisher import publish as publish_tables

    try:
        return await publish_tables(dest, settings, rebuild=rebuild, now=clock())
    except ArchiverError:
        raise
    except Exception as error:  # the catalog's own errors (pyiceberg, SQLAlchemy, botocore): one line
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        hint = "" if rebuild else " (a lost or damaged catalog entry: publish --rebuild)"
        raise PublishError(f"publishing the Iceberg tables failed: {message}{hint}") from error


async def compact_keys(
    source: ObjectStore,
    dest: ObjectStore,
    settings: Settings,
    keys: Sequence[str],
    *,
    described: Sequence[ObjectInfo] = (),
    sweep: bool = True,
    clock: Clock = utc_now,
) -> RunReport:
    """Archive the given source keys (from S3 event notifications) without listing their days.

    `keys` are HEADed for their size and ETag; `described` objects are those whose
    event already said both (an S3 notification or EventBridge event does), so they
    are read with a GET alone: one that is gone answers the GET with a 404 as a HEAD
    would. Keys that are gone or not JSON are counted as skipped. Keys that could not
    be archived are in the report's `failures` (by key, or by the unit that failed)
    and in `unarchived_keys`.

    With `sweep` (the default) each root's ledger is listed (one LIST), so a commit also
    removes what a crashed attempt at its unit left. `sweep=False` finds the units from
    their heads alone: for a first delivery of events, whose crashed attempt, if any,
    is retried with `sweep` (a redelivery), and whose days a `compact` revisits.
    """
    run = Run(source, dest, settings, clock=clock)
    with fewer_collections():
        return await run.run_keys(list(keys), list(described), sweep=sweep)


async def plan(source: ObjectStore, dest: ObjectStore | None, settings: Settings) -> list[PlannedUnit]:
    """The units of the settings' window, each small enough for one worker.

    With `dest`, the split of every day is read from (or, for a day planned for the
    first time, recorded in) the archive's ledger, so the names are the ones
    `compact --unit` and every later run use. Without it, each root is printed
    whole with its object count.
    """
    return await plan_units(source, dest, settings)


async def verify(source: ObjectStore, dest: ObjectStore, settings: Settings) -> VerifyReport:
    """Prove every source object of the window is archived or quarantined under its ETag."""
    return await verify_window(source, dest, settings.since, settings.until, ListingOptions.of(settings))


async def redact(dest: ObjectStore, settings: Settings, *, clock: Clock = utc_now) -> RedactReport:
    """Rewrite the window's data files not written under the settings' policy, from the archive alone."""
    return await redact_window(dest, settings, int(clock().timestamp() * 1_000_000))


async def forget(
    dest: ObjectStore,
    settings: Settings,
    kind: str,
    identifier: str,
    *,
    dry_run: bool = False,
    clock: Clock = utc_now,
) -> ForgetReport:
    """Erase one person (`kind` "user_id" or "email") from the window, from the archive alone, exactly once;
    `dry_run` reports what would change and changes nothing."""
    return await forget_window(dest, settings, kind, identifier, clock(), dry_run=dry_run)


async def forget_url(
    dest_url: str,
    settings: Settings,
    kind: str,
    identifier: str,
    *,
    dry_run: bool = False,
    clock: Clock = utc_now,
) -> ForgetReport:
    """`forget` from a URL; where the archive has Iceberg tables, the rewrite is then published (its new
    snapshots), so older snapshots holding the erased values start to age out."""
    async with open_stores(dest_url, None, settings) as (dest, _):
        report = await forget(dest, settings, kind, identifier, dry_run=dry_run, clock=clock)
    if not dry_run and publishes(dest_url, settings):
        try:
            published = await publish(dest_url, settings, clock=clock)
        except ArchiverError as error:
            report.failures.append({"publish": dest_url, "error": str(error), "kind": type(error).__name__})
            return report
        report.publish = published.as_dict()
        report.failures.extend(published.failures)
    return report


class ActivitySink:
    """The archive's activity ledger, for events that come from elsewhere than the bucket (the API)."""

    def __init__(self, dest: ObjectStore, settings: Settings, clock: Clock = utc_now) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="archiver-activity-")
        self._ledger = ActivityLedger(
            dest, settings, Path(self._workdir.name), BufferBudget(settings.max_buffered_bytes)
        )
        self._clock = clock
        self._policy = current_policy(settings)
        self.erasure: Erasure | None = None
        self._dest = dest
        self._settings = settings
        self._owner_known = False

    async def commit(self, events: Sequence[ActivityEvent]) -> int:
        """Archive the events (the archive's erasures applied, under the redaction policy), one row per
        event whatever else holds a copy; return the rows added."""
        if not self._owner_known:
            self._ledger.published_tables = await tables_published(self._dest, self._settings)
            self._owner_known = True
        if self.erasure:
            self.erasure.erase_events(events)
        for event in events:
            redact_row(self._policy, "activity", event.row)
        now_us = int(self._clock().timestamp() * 1_000_000)
        return await self._ledger.commit(events, now_us)

    async def close(self) -> None:
        self._workdir.cleanup()


async def activity_sink(dest: ObjectStore, settings: Settings, *, clock: Clock = utc_now) -> ActivitySink:
    """Where `pull-activity` archives API events: the same per-day ledgers the stream's events use."""
    sink = ActivitySink(dest, settings, clock)
    sink.erasure = await load_erasure(dest, current_policy(settings))
    return sink


async def write_plan(dest: ObjectStore, units: Sequence[PlannedUnit], name: str) -> str:
    """The units as a JSONL manifest (`{"unit": NAME}` a line) under `_archiver/plans/`; returns its key."""
    return await write_manifest(dest, units, name)
