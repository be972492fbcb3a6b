"""The engine's public API: what the command line and the Lambda handlers call, and nothing else.

Entry points open stores with `open_stores`, then call `compact`, `compact_keys`,
`plan` or `verify`, and turn the report they get back into their own output.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from archiver.config import Settings
from archiver.engine.layout_units import units_of_keys
from archiver.engine.pipeline import ProgressHook, RunReport, archive
from archiver.engine.units import UnitScope, shard_key
from archiver.engine.verify import VerifyReport
from archiver.engine.verify import verify as verify_window
from archiver.engine.walker import Window, plan_source
from archiver.storage.location import open_store
from archiver.storage.store import ObjectStore

__all__ = [
    "PlannedUnit",
    "RunReport",
    "UnitScope",
    "VerifyReport",
    "compact",
    "compact_keys",
    "open_stores",
    "plan",
    "verify",
]


@dataclass(frozen=True, slots=True)
class PlannedUnit:
    """One independent unit of work, as `plan` prints it and `compact --unit` takes it."""

    unit: str
    objects: int | None = None

    def as_dict(self) -> dict[str, object]:
        line: dict[str, object] = {"unit": self.unit, "shard_key": shard_key(self.unit)}
        if self.objects is not None:
            line["objects"] = self.objects
        return line


@asynccontextmanager
async def open_stores(
    source_url: str, dest_url: str | None, settings: Settings
) -> AsyncIterator[tuple[ObjectStore, ObjectStore | None]]:
    """The source store and (if a URL is given) the destination store, closed on exit."""
    source = await _open(source_url, settings, create=False)
    try:
        if dest_url is None:
            yield source, None
            return
        dest = await _open(dest_url, settings, create=True)
        try:
            yield source, dest
        finally:
            await dest.close()
    finally:
        await source.close()


async def _open(url: str, settings: Settings, *, create: bool) -> ObjectStore:
    return await open_store(
        url,
        concurrency=settings.concurrency,
        create=create,
        max_attempts=settings.s3_max_attempts,
        retry_mode=settings.s3_retry_mode,
    )


async def compact(
    source: ObjectStore,
    dest: ObjectStore,
    settings: Settings,
    *,
    scope: UnitScope | None = None,
    progress: ProgressHook | None = None,
    time_left: Callable[[], float] | None = None,
) -> RunReport:
    """Archive the settings' window (or the lookback) of `source` into `dest`, exactly once."""
    if scope is not None and scope.unit:
        settings = scope.narrow(settings)
    return await archive(
        source,
        dest,
        settings,
        unit_filter=None if scope is None or scope.everything else scope.accepts,
        progress=progress,
        sequential_reads=source.sequential_reads,
    )


async def compact_keys(
    source: ObjectStore, dest: ObjectStore, settings: Settings, keys: Sequence[str]
) -> RunReport:
    """Archive the units that hold `keys` (event-driven runs: keys from S3 notifications)."""
    units = units_of_keys(keys)
    return await archive(source, dest, settings, unit_filter=units.__contains__)


async def plan(source: ObjectStore, dest: ObjectStore | None, settings: Settings) -> list[PlannedUnit]:
    """The units of the settings' window, each small enough for one worker."""
    source_plan = await plan_source(source, Window(settings.since, settings.until))
    return [PlannedUnit(unit) for unit in source_plan.units()]


async def verify(source: ObjectStore, dest: ObjectStore, settings: Settings) -> VerifyReport:
    """Prove every source object of the window is archived or quarantined under its ETag."""
    return await verify_window(source, dest, settings.since, settings.until)
