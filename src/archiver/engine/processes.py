"""Every core: a run over many roots as one shard of roots per worker process.

Roots (days) are independent units of work with their own ledgers, so N processes
each archiving one shard of the roots (a stable hash of the root's name) end in the
same archive as one process, by the same conditional commits that let concurrent
workers share an archive. Each process lists, fetches, parses, writes and commits on
its own core; none waits on another. The parent advances the watermark once, after
every shard finished cleanly, exactly as one complete run would.

Each shard is its own process with its own pipe to the parent (progress, then the
report), so nothing is shared between workers: a worker killed outright (SIGKILL,
out of memory) cannot leave a lock that stops the others. Its shard becomes a failure
of the run; the other shards finish and commit; the next run redoes what it missed.
The processes start as `children` explains (a fresh interpreter each, never the
caller's `__main__`); one that cannot start stops the run with a WorkerStartError.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from archiver import errors
from archiver.config import Settings
from archiver.engine.children import ChildProcess, start_child
from archiver.engine.report import RunReport
from archiver.engine.run import Run
from archiver.engine.stores import open_stores, open_url
from archiver.engine.units import UnitScope, unit_day
from archiver.engine.watermark import Watermark
from archiver.storage.store import ObjectStore

PROGRESS_EVERY = 256
"""Objects a worker process archives between two progress messages to the parent."""


class _Ticks:
    """Counts objects in a worker process and tells the parent every PROGRESS_EVERY of them."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.pending = 0

    def __call__(self, count: int) -> None:
        self.pending += count
        if self.pending >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.pipe.send(("progress", self.pending))
        self.pending = 0


async def _shard(
    source_url: str, dest_url: str, settings: Settings, shard: tuple[int, int], now: str, ticks: _Ticks
) -> RunReport:
    async with open_stores(source_url, dest_url, settings) as (source, dest):
        assert dest is not None
        clock = dt.datetime.fromisoformat(now)
        run = Run(source, dest, settings, scope=UnitScope(shard=shard), clock=lambda: clock, progress=ticks)
        try:
            return await run.run()
        finally:
            ticks.flush()


def run_shard(
    pipe: Connection,
    source_url: str,
    dest_url: str,
    settings: Settings,
    shard: tuple[int, int],
    now: str,
) -> None:
    """A worker process: archive one shard; send progress, then its report (or the error that stopped it)."""
    try:
        report = asyncio.run(_shard(source_url, dest_url, settings, shard, now, _Ticks(pipe)))
    except errors.ArchiverError as error:
        outcome: dict[str, Any] = {
            "error": type(error).__name__,
            "message": str(error),
            "retryable": error.retryable,
        }
    else:
        outcome = {"report": report}
    pipe.send(("done", outcome))
    pipe.close()


def merge(reports: list[RunReport]) -> RunReport:
    """One report of several shards' runs: counts added up, lists joined."""
    merged = RunReport()
    for report in reports:
        merged.absorb(report)
    return merged


def _count_parent_requests(report: RunReport, dest: ObjectStore) -> None:
    """The watermark's requests, made by the parent, join the children's in the report."""
    counts = dest.counts
    report.absorb(
        RunReport(
            requests=counts.as_report(),
            bytes_read=counts.bytes_read,
            bytes_written=counts.bytes_written,
            by_store={"dest": counts.usage()},
        )
    )


@dataclass(slots=True)
class _Worker:
    """One shard's process and the parent's end of its pipe."""

    index: int
    process: ChildProcess
    outcome: dict[str, Any] | None = None
    lost: dict[str, str] | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None or self.lost is not None

    def read(self, progress: Callable[[int], None] | None) -> None:
        pipe = self.process.pipe
        while self.outcome is None and pipe.poll():
            try:
                kind, value = pipe.recv()
            except (EOFError, OSError):
                return
            if kind == "progress":
                if progress is not None:
                    progress(value)
            else:
                self.outcome = value

    def check(self, workers: int, progress: Callable[[int], None] | None) -> None:
        self.read(progress)
        if self.outcome is None and not self.process.is_alive():
            self.read(progress)  # what it sent just before it exited
            if self.outcome is None:
                self.lost = _lost_shard(self.index, workers, self.process.exitcode)


def _lost_shard(index: int, workers: int, exitcode: int | None) -> dict[str, str]:
    """A shard whose process died (killed, out of memory) before its report: a unit-like failure.

    What it committed stays committed; the next run redoes the rest, as after any crash.
    """
    how = f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit {exitcode}"
    return {
        "unit": f"shard={index + 1}/{workers}",
        "error": f"its worker process died ({how}) before reporting",
        "kind": "WorkerProcessDied",
    }


def _raise(outcome: dict[str, Any]) -> None:
    error_class = getattr(errors, outcome["error"], errors.ArchiverError)
    if not (isinstance(error_class, type) and issubclass(error_class, errors.ArchiverError)):
        error_class = errors.ArchiverError
    raise error_class(outcome["message"], retryable=outcome["retryable"])


async def compact_in_processes(
    source_url: str,
    dest_url: str,
    settings: Settings,
    workers: int,
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> RunReport:
    """Archive every root, one shard of roots per process; the watermark moves once all are clean."""
    started = time.perf_counter()
    child_settings = replace(settings, parse_workers=1)
    running: list[_Worker] = []
    try:
        for index in range(workers):
            arguments = (source_url, dest_url, child_settings, (index, workers), now.isoformat())
            child = start_child(run_shard, *arguments, what=f"{workers} shard processes")
            running.append(_Worker(index, child))
        started_up = await asyncio.gather(*(w.process.ready() for w in running), return_exceptions=True)
        for worker, outcome in zip(running, started_up, strict=True):
            if isinstance(outcome, errors.WorkerProcessDiedError):
                worker.lost = _lost_shard(worker.index, workers, worker.process.exitcode)
            elif isinstance(outcome, BaseException):
                raise outcome
        while not all(worker.finished for worker in running):
            await asyncio.sleep(0.1)
            for worker in running:
                if not worker.finished:
                    worker.check(workers, progress)
    finally:
        for worker in running:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.close()
    for worker in running:
        if worker.outcome is not None and "error" in worker.outcome:
            _raise(worker.outcome)
    report = merge([worker.outcome["report"] for worker in running if worker.outcome is not None])
    report.failures.extend(worker.lost for worker in running if worker.lost is not None)
    report.seconds = time.perf_counter() - started
    if settings.since is None and settings.until is None and not report.failures and not report.units_left:
        dest = await open_url(dest_url, settings, create=True)
        try:
            watermark = Watermark(dest, now.date())
            await watermark.window(settings)
            await watermark.advance([day for day in map(unit_day, report.days) if day is not None])
        finally:
            await dest.close()
        _count_parent_requests(report, dest)
    return report
