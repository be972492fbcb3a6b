"""Every core: a run over many roots as one shard of roots per worker process.

Roots (days) are independent units of work with their own ledgers, so N processes
each archiving one shard of the roots (a stable hash of the root's name) end in the
same archive as one process, by the same conditional commits that let concurrent
workers share an archive. Each process lists, fetches, parses, writes and commits on
its own core; none waits on another. The parent advances the watermark once, after
every shard finished cleanly, exactly as one complete run would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from queue import Empty
from typing import Any

from archiver import errors
from archiver.config import Settings
from archiver.engine.parsing import exit_with
from archiver.engine.report import RunReport
from archiver.engine.run import Run
from archiver.engine.stores import open_stores, open_url
from archiver.engine.units import UnitScope, unit_day
from archiver.engine.watermark import Watermark

PROGRESS_EVERY = 256
"""Objects a worker process archives between two progress messages to the parent."""

_progress: Any = None  # a worker process's queue to the parent, set by _init_worker


def _init_worker(queue: Any, parent_pid: int) -> None:
    global _progress
    _progress = queue
    exit_with(parent_pid)


class _Ticks:
    """Counts objects in a worker process and tells the parent every PROGRESS_EVERY of them."""

    def __init__(self) -> None:
        self.pending = 0

    def __call__(self, count: int) -> None:
        self.pending += count
        if self.pending >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending and _progress is not None:
            _progress.put(self.pending)
        self.pending = 0


_LIST_FIELDS = ("failures", "units_left", "unarchived_keys", "future_days", "missing_files", "notes")


async def _shard(
    source_url: str, dest_url: str, settings: Settings, shard: tuple[int, int], now: str
) -> RunReport:
    async with open_stores(source_url, dest_url, settings) as (source, dest):
        assert dest is not None
        clock = dt.datetime.fromisoformat(now)
        ticks = _Ticks()
        run = Run(source, dest, settings, scope=UnitScope(shard=shard), clock=lambda: clock, progress=ticks)
        try:
            return await run.run()
        finally:
            ticks.flush()


def run_shard(
    source_url: str, dest_url: str, settings: Settings, shard: tuple[int, int], now: str
) -> dict[str, Any]:
    """In a worker process: one shard's report, or the error that stopped it (by class name and message)."""
    try:
        report = asyncio.run(_shard(source_url, dest_url, settings, shard, now))
    except errors.ArchiverError as error:
        return {"error": type(error).__name__, "message": str(error), "retryable": error.retryable}
    return {"report": report, "days": report.days}


def merge(reports: list[RunReport]) -> RunReport:
    """One report of several shards' runs: counts added up, lists joined."""
    merged = RunReport()
    for report in reports:
        for item in fields(RunReport):
            name = item.name
            value, total = getattr(report, name), getattr(merged, name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(merged, name, total + value)
            elif name in ("rows", "requests"):
                for key, count in value.items():
                    total[key] = total.get(key, 0) + count
            elif name in _LIST_FIELDS or name == "days":
                total.extend(value)
            elif name == "by_store":
                for role, use in value.items():
                    merged.add_store_use(role, use)
        merged.window = report.window or merged.window
    return merged


def _count_parent_requests(report: RunReport, dest: Any) -> None:
    """The watermark's requests, made by the parent, join the children's in the report."""
    counts = dest.counts
    for kind, count in counts.as_report().items():
        report.requests[kind] = report.requests.get(kind, 0) + count
    report.bytes_read += counts.bytes_read
    report.bytes_written += counts.bytes_written
    report.add_store_use("dest", counts.usage())


def _drain(queue: Any, progress: Callable[[int], None] | None) -> None:
    while True:
        try:
            count = queue.get_nowait()
        except Empty:
            return
        if progress is not None:
            progress(count)


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
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    queue = context.Queue()
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(queue, os.getpid())
    ) as pool:
        futures = [
            loop.run_in_executor(
                pool, run_shard, source_url, dest_url, child_settings, (index, workers), now.isoformat()
            )
            for index in range(workers)
        ]
        done = asyncio.ensure_future(asyncio.gather(*futures))
        while not done.done():
            await asyncio.wait([done], timeout=0.2)
            _drain(queue, progress)
        outcomes = done.result()
    _drain(queue, progress)
    for outcome in outcomes:
        if "error" in outcome:
            _raise(outcome)
    report = merge([outcome["report"] for outcome in outcomes])
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
