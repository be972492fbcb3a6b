"""The engine's public API: what the command line and the Lambda handlers call, and nothing else.

Entry points open stores with `open_stores`, then call `compact`, `compact_keys`,
`plan` or `verify`, and turn the report they get back into their own output.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from archiver.config import Settings
from archiver.engine.activity import ActivityLedger
from archiver.engine.context import ProgressHook
from archiver.engine.planner import PLANS_PREFIX, PlannedUnit, plan_units, write_manifest
from archiver.engine.policies import current_policy, with_policy
from archiver.engine.processes import compact_in_processes
from archiver.engine.report import RunReport
from archiver.engine.rewriting import RedactReport, redact_window
from archiver.engine.run import Clock, Run, cpu_count, utc_now
from archiver.engine.stores import check_dest_apart, open_stores
from archiver.engine.units import UnitScope, shard_key
from archiver.engine.verify import VerifyReport
from archiver.engine.verify import verify as verify_window
from archiver.engine.writer import BufferBudget
from archiver.formats.records import ActivityEvent
from archiver.formats.redaction import redact_row
from archiver.storage.location import is_within
from archiver.storage.store import ObjectStore

__all__ = [
    "PLANS_PREFIX",
    "ActivitySink",
    "PlannedUnit",
    "RedactReport",
    "RunReport",
    "UnitScope",
    "VerifyReport",
    "activity_sink",
    "check_dest_apart",
    "compact",
    "compact_keys",
    "compact_urls",
    "is_within",
    "open_stores",
    "plan",
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
    workers = settings.parse_workers or cpu_count()
    if workers > 1 and (scope is None or scope.everything):
        return await compact_in_processes(source_url, dest_url, settings, workers, clock(), progress)
    async with open_stores(source_url, dest_url, settings) as (source, dest):
        assert dest is not None
        return await compact(source, dest, settings, scope=scope, progress=progress, clock=clock)


async def compact_keys(
    source: ObjectStore,
    dest: ObjectStore,
    settings: Settings,
    keys: Sequence[str],
    *,
    clock: Clock = utc_now,
) -> RunReport:
    """Archive the given source keys (from S3 event notifications) without listing their days.

    Keys that are gone or not JSON are counted as skipped. Keys that could not be
    archived are in the report's `failures` (by key, or by the unit that failed)
    and in `unarchived_keys`.
    """
    run = Run(source, dest, settings, clock=clock)
    return await run.run_keys(list(keys))


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
    return await verify_window(source, dest, settings.since, settings.until)


async def redact(dest: ObjectStore, settings: Settings, *, clock: Clock = utc_now) -> RedactReport:
    """Rewrite the window's data files not written under the settings' policy, from the archive alone."""
    return await redact_window(dest, settings, int(clock().timestamp() * 1_000_000))


class ActivitySink:
    """The archive's activity ledger, for events that come from elsewhere than the bucket (the API)."""

    def __init__(self, dest: ObjectStore, settings: Settings, clock: Clock = utc_now) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="archiver-activity-")
        self._ledger = ActivityLedger(
            dest, settings, Path(self._workdir.name), BufferBudget(settings.max_buffered_bytes)
        )
        self._clock = clock
        self._policy = current_policy(settings)

    async def commit(self, events: Sequence[ActivityEvent]) -> int:
        """Archive the events (under the redaction policy), one row per event whatever else holds a copy;
        return the rows added."""
        for event in events:
            redact_row(self._policy, "activity", event.row)
        now_us = int(self._clock().timestamp() * 1_000_000)
        return await self._ledger.commit(events, now_us)

    async def close(self) -> None:
        self._workdir.cleanup()


async def activity_sink(dest: ObjectStore, settings: Settings, *, clock: Clock = utc_now) -> ActivitySink:
    """Where `pull-activity` archives API events: the same per-day ledgers the stream's events use."""
    return ActivitySink(dest, settings, clock)


async def write_plan(dest: ObjectStore, units: Sequence[PlannedUnit], name: str) -> str:
    """The units as a JSONL manifest (`{"unit": NAME}` a line) under `_archiver/plans/`; returns its key."""
    return await write_manifest(dest, units, name)
