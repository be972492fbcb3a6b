"""One `compact` run: resolve the window, plan the source, route roots to units, archive them, report.

Roots are listed and routed a few at a time; their batches flow through a bounded
queue to unit workers, so memory holds a handful of batches, never a day. A unit
that fails is a result, not a crash: the others finish and commit, the report
names it, and the next run retries it. A root whose batches all committed gets a
`seen-` marker for its listing, so an unchanged rerun costs LISTs only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from archiver.config import Settings
from archiver.engine import ledger
from archiver.engine.activity_check import ActivityCheck
from archiver.engine.context import ProgressHook, RunContext, ledger_listings
from archiver.engine.erasures import load_erasure
from archiver.engine.listing import ListingOptions, SourcePlan, Window, plan_source
from archiver.engine.parsing import Parser
from archiver.engine.policies import current_policy
from archiver.engine.publish.mode import tables_published
from archiver.engine.report import RunReport
from archiver.engine.routing import Batch, RootPass, data_prefixes, load_tree
from archiver.engine.units import UnitScope, folder_of, root_of, root_of_key, unit_day
from archiver.engine.watermark import Watermark
from archiver.engine.worker import UnitWorker
from archiver.errors import ArchiverError, ConfigError
from archiver.formats.layout import is_json_key
from archiver.storage.store import ObjectInfo, ObjectStore

log = logging.getLogger("archiver.engine")

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class _RootWork:
    """A root pass's batches still being archived, and whether all of them completed."""

    root_pass: RootPass
    pending: int = 0
    complete: bool = True
    listed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Run:
    """Archives the window of `source` into `dest`."""

    def __init__(
        self,
        source: ObjectStore,
        dest: ObjectStore,
        settings: Settings,
        *,
        scope: UnitScope | None = None,
        progress: ProgressHook | None = None,
        time_left: Callable[[], float] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.scope = scope or UnitScope()
        self.time_left = time_left
        self.clock = clock
        self.workdir = Path(tempfile.mkdtemp(prefix="archiver-"))
        workers = settings.parse_workers or cpu_count()
        self.ctx = RunContext(
            source=source,
            dest=dest,
            settings=settings,
            workdir=self.workdir,
            now_us=int(clock().timestamp() * 1_000_000),
            parser=Parser(workers, current_policy(settings)),
            progress=progress,
        )
        self.ctx.report.policy = current_policy(settings).digest
        self.watermark = Watermark(dest, clock().date())

    @property
    def report(self) -> RunReport:
        return self.ctx.report

    async def run(self) -> RunReport:
        started = time.perf_counter()
        try:
            await self._read_erasures()
            await self._ownership()
            window = await self.watermark.window(self.ctx.settings)
            self.report.window = {
                "since": window.since.isoformat() if window.since else None,
                "until": window.until.isoformat() if window.until else None,
            }
            plan = await plan_source(self.ctx.source, window, ListingOptions.of(self.ctx.settings))
            self.report.listing = dict(plan.listing)
            await self._read_ledgers(window)
            roots = [root for root in plan.roots() if self.scope.accepts_root(root)]
            if self.scope.unit is None:
                # Roots are this run's alone (units of a split root may run at once, each its
                # own run: their seen markers list the files they see when they make them).
                await self.ctx.holdings.load(prefix for root in roots for prefix in data_prefixes(root))
            self.report.days = roots
            self.report.future_days = [r for r in roots if self.watermark.is_future(r)]
            activity = ActivityCheck(self.ctx, window, self.scope.accepts_root)
            await activity.run()
            await self._archive(plan, roots)
            if not self._out_of_time():
                await activity.recheck()
            complete = self.scope.everything and self.ctx.settings.since is None
            if (
                complete
                and self.ctx.settings.until is None
                and not self.report.failures
                and not self.report.units_left
            ):
                await self.watermark.advance([day for day in map(unit_day, roots) if day is not None])
        finally:
            await self.ctx.parser.aclose()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._finish_counts(started)
        return self.report

    async def run_keys(
        self, keys: list[str], described: list[ObjectInfo] | None = None, *, sweep: bool = True
    ) -> RunReport:
        """Archive named source keys through their roots' unit trees; no source LIST.

        `keys` are HEADed first; `described` objects (size and ETag from their event) are not.
        With `sweep`, each root's ledger is listed, so its units' commits also remove what
        crashed attempts left; without, the units are found from their heads alone.
        """
        started = time.perf_counter()
        try:
            await self._read_erasures(by_index=True)
            await self._ownership()
            infos = await self._inspect(keys, described or [])
            by_root: dict[str, list[ObjectInfo]] = {}
            for info in infos:
                by_root.setdefault(root_of_key(info.key), []).append(info)
            self.report.units = len(by_root)
            try:
                async with asyncio.TaskGroup() as group:
                    for root in sorted(by_root):
                        group.create_task(self._archive_keys(root, by_root[root], sweep))
            except BaseExceptionGroup as failed:
                raise _first(failed) from None
        finally:
            await self.ctx.parser.aclose()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._finish_counts(started)
        return self.report

    async def _ownership(self) -> None:
        """Who deletes superseded files: this run, or the Iceberg publisher (the archive has tables)."""
        published = await tables_published(self.ctx.dest, self.ctx.settings)
        self.ctx.published_tables = self.ctx.activity.published_tables = published

    async def _inspect(self, keys: list[str], described: list[ObjectInfo]) -> list[ObjectInfo]:
        """Size and ETag of each object (HEAD for keys no event described); gone or non-JSON keys skipped."""
        gate = asyncio.Semaphore(max(1, self.ctx.settings.concurrency))
        told = {info.key: info for info in described if is_json_key(info.key)}
        asked = [key for key in dict.fromkeys(keys) if key not in told]
        self.report.objects_listed += len(keys) + len(described)

        async def inspect(key: str) -> ObjectInfo | None:
            if not is_json_key(key):
                return None
            async with gate:
                return await self.ctx.source.head(key)

        found = await asyncio.gather(*(inspect(key) for key in asked))
        infos = [*told.values(), *(info for info in found if info is not None)]
        self.report.objects_skipped += len(keys) + len(described) - len(infos)
        return sorted(infos, key=lambda info: info.key)

    async def _archive_keys(self, root: str, infos: list[ObjectInfo], sweep: bool) -> None:
        try:
            units: list[str] | None = None
            if sweep:
                await self.ctx.ledgers.read(self.ctx.dest, [(f"{ledger.LEDGER_ROOT}{root}", None)])
                units = self.ctx.ledgers.units_of_root(root)
            tree = await load_tree(self.ctx.dest, root, units)
        except (ArchiverError, OSError, ValueError) as error:
            self._fail_unit(root, error, [info.key for info in infos])
            return
        by_unit: dict[str, list[ObjectInfo]] = {}
        for info in infos:
            by_unit.setdefault(tree.route(folder_of(info.key)), []).append(info)
        work = _RootWork(RootPass(self.ctx, SourcePlan(), root), listed=True)
        worker = UnitWorker(self.ctx, confirm_changed=True)
        for unit in sorted(by_unit):
            work.pending += 1
            await self._archive_batch(worker, work, Batch(tree, unit, by_unit[unit]))

    async def _read_erasures(self, *, by_index: bool = False) -> None:
        """The archive's erasures, applied to every row this run parses (`erasures.py`)."""
        policy = current_policy(self.ctx.settings)
        self.ctx.parser.erasure = await load_erasure(self.ctx.dest, policy, by_index=by_index)

    async def _read_ledgers(self, window: Window) -> None:
        await self.ctx.ledgers.read(self.ctx.dest, ledger_listings(window.since))

    async def _archive(self, plan: SourcePlan, roots: list[str]) -> None:
        workers = 1 if self.ctx.source.sequential_reads else self.ctx.settings.unit_concurrency
        queue: asyncio.Queue[tuple[_RootWork, Batch] | None] = asyncio.Queue(maxsize=workers)
        worker = UnitWorker(self.ctx)
        unit = self.scope.unit

        async def produce() -> None:
            gate = asyncio.Semaphore(max(1, workers))
            async with asyncio.TaskGroup() as roots_group:
                for root in roots:
                    roots_group.create_task(self._list_root(plan, root, unit, queue, gate))
            for _ in range(workers):
                await queue.put(None)

        async def consume() -> None:
            while (item := await queue.get()) is not None:
                work, batch = item
                await self._archive_batch(worker, work, batch)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(workers):
                    group.create_task(consume())
        except BaseExceptionGroup as failed:
            raise _first(failed) from None

    async def _list_root(
        self,
        plan: SourcePlan,
        root: str,
        unit: str | None,
        queue: asyncio.Queue[tuple[_RootWork, Batch] | None],
        gate: asyncio.Semaphore,
    ) -> None:
        async with gate:
            work = _RootWork(RootPass(self.ctx, plan, root, unit if unit and root_of(unit) == root else None))
            self.report.units += 1
            try:
                async for batch in work.root_pass.batches():
                    if self._out_of_time():
                        self.report.units_left.append(batch.unit)
                        work.complete = False
                        continue
                    work.pending += 1
                    await queue.put((work, batch))
            except ConfigError:
                raise  # a unit name that does not exist is a bad argument, not a unit's failure
            except Exception as error:  # one unit's surprise is its own failure, never the run's
                self._fail_unit(root, error)
                work.complete = False
            work.listed = True
            if work.pending == 0:
                work.done.set()
        await work.done.wait()
        if work.complete and not work.root_pass.skipped_whole and not self._retired_pending(work):
            try:
                await self._mark_seen(work.root_pass)
            except ArchiverError as error:
                self._fail_unit(root, error)

    async def _archive_batch(self, worker: UnitWorker, work: _RootWork, batch: Batch) -> None:
        try:
            result = await worker.archive(batch.tree, batch.unit, batch.objects)
            work.complete &= result.complete
            if result.complete and not result.failures:
                await self._settle(batch)
            self.report.failures.extend(result.failures)
            self.report.objects_failed += len(result.failures)
            self.report.unarchived_keys.extend(failure["key"] for failure in result.failures)
        except ConfigError:
            work.complete = False
            raise  # the settings or the environment (worker processes that cannot start): the run's error
        except Exception as error:  # one unit's surprise is its own failure, never the run's
            self._fail_unit(batch.unit, error, [info.key for info in batch.objects])
            work.complete = False
        except BaseException:
            work.complete = False  # cancelled or crashed: the root must not be marked seen
            raise
        finally:
            work.pending -= 1
            if work.listed and work.pending == 0:
                work.done.set()

    async def _settle(self, batch: Batch) -> None:
        """Remember that the unit holds every object of this batch, so an unchanged batch skips its index.

        Only in a root of several units: a root of one says as much with its seen marker,
        and where a change in the root makes the unit's batch differ, no marker helps.
        """
        retired = batch.tree.state(batch.unit).head.retired and not self.ctx.published_tables
        if batch.digest is None or retired or len(batch.tree.states) < 2:
            return
        marker = ledger.settled_key(batch.unit, batch.digest)
        known = self.ctx.ledgers.of(batch.unit)
        if marker in known:
            return
        await self.ctx.dest.put(marker, b"")
        prefix = ledger.settled_key(batch.unit, "")
        stale = [key for key in known if key.startswith(prefix)]
        if stale:
            await self.ctx.dest.delete(stale)
        self.ctx.ledgers.forget(batch.unit, stale)
        self.ctx.ledgers.add(marker)

    def _fail_unit(self, unit: str, error: BaseException, keys: list[str] | None = None) -> None:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        log.info("unit %s failed: %s", unit, message)
        self.report.failures.append({"unit": unit, "error": message, "kind": type(error).__name__})
        self.report.unarchived_keys.extend(keys or ())

    def _out_of_time(self) -> bool:
        return self.time_left is not None and self.time_left() < self.ctx.settings.time_reserve_seconds

    def _retired_pending(self, work: _RootWork) -> bool:
        return bool(work.root_pass.units_with_retired())

    async def _mark_seen(self, root_pass: RootPass) -> None:
        if root_pass.fingerprint.count == 0:
            return
        scope = root_pass.scope
        marker = ledger.seen_key(scope, await root_pass.marker_digest())
        await self.ctx.dest.put(marker, b"")
        prefix = ledger.seen_key(scope, "")
        stale = [key for key in self.ctx.ledgers.of(scope) if key.startswith(prefix) and key != marker]
        if stale:
            await self.ctx.dest.delete(stale)
        self.ctx.ledgers.forget(scope, stale)

    def _finish_counts(self, started: float) -> None:
        report = self.report
        report.seconds = time.perf_counter() - started
        report.files_deleted += self.ctx.committer.files_deleted + self.ctx.activity.committer.files_deleted
        report.files_written += self.ctx.activity.files_written
        report.commit_conflicts += self.ctx.activity.conflicts
        source, dest = self.ctx.source, self.ctx.dest
        stores = [source.counts] if source is dest else [source.counts, dest.counts]
        requests = [counts.as_report() for counts in stores]
        report.requests = {kind: sum(each[kind] for each in requests) for kind in requests[0]}
        report.bytes_read = sum(counts.bytes_read for counts in stores)
        report.bytes_written = sum(counts.bytes_written for counts in stores)
        roles = ("source_and_dest",) if source is dest else ("source", "dest")
        for role, counts in zip(roles, stores, strict=True):
            report.add_store_use(role, counts.usage())


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real exception inside (possibly nested) task-group failures."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
