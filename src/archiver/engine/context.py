"""What every part of one run shares: stores, settings, budgets, the clock, the report, the ledger listing."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from archiver.config import Settings
from archiver.engine.activity import ActivityLedger
from archiver.engine.commit import Committer
from archiver.engine.fetcher import ByteBudget
from archiver.engine.holdings import Holdings
from archiver.engine.ledger import LEDGER_ROOT, unit_of
from archiver.engine.parsing import Parser
from archiver.engine.report import RunReport
from archiver.engine.writer import BufferBudget
from archiver.storage.store import ObjectStore

ProgressHook = Callable[[int], None]

log = logging.getLogger("archiver.engine")


@dataclass(slots=True)
class LedgerListing:
    """The ledger objects of each unit, as one LIST of `_archiver/units/` saw them."""

    keys: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, key: str) -> None:
        self.keys[unit_of(key)].add(key)

    def of(self, unit: str) -> set[str]:
        return self.keys.get(unit, set())

    def units_of_root(self, root: str) -> list[str]:
        return sorted(unit for unit in self.keys if unit == root or unit.startswith(root + "."))

    def forget(self, unit: str, keys: list[str]) -> None:
        self.keys.get(unit, set()).difference_update(keys)

    async def read(self, dest: ObjectStore, listings: list[tuple[str, str | None]]) -> None:
        """Add every ledger object of the given (prefix, start_after) listings."""
        for prefix, start_after in listings:
            async for page in dest.list_pages(prefix, start_after=start_after):
                for info in page.objects:
                    self.add(info.key)


def ledger_listings(since: dt.date | None) -> list[tuple[str, str | None]]:
    """What to list of the ledger: all of it, or each root kind from the window's first day."""
    if since is None:
        return [(LEDGER_ROOT, None)]
    before = (since - dt.timedelta(days=1)).isoformat()
    return [
        (f"{LEDGER_ROOT}day=", f"{LEDGER_ROOT}day={before}~"),
        (f"{LEDGER_ROOT}loose=", f"{LEDGER_ROOT}loose={before}~"),
    ]


@dataclass(slots=True)
class RunContext:
    """The shared state of one run."""

    source: ObjectStore
    dest: ObjectStore
    settings: Settings
    workdir: Path
    now_us: int
    parser: Parser
    report: RunReport = field(default_factory=RunReport)
    ledgers: LedgerListing = field(default_factory=LedgerListing)
    progress: ProgressHook | None = None
    published_tables: bool = False
    """The archive has Iceberg tables: superseded files are the publisher's to delete."""
    budget: ByteBudget = field(init=False)
    buffers: BufferBudget = field(init=False)
    holdings: Holdings = field(init=False)
    """The data files of the run's roots, listed once (seen markers' digests)."""
    committer: Committer = field(init=False)
    activity: ActivityLedger = field(init=False)

    def __post_init__(self) -> None:
        self.budget = ByteBudget(self.settings.max_bytes_in_flight)
        self.buffers = BufferBudget(self.settings.max_buffered_bytes)
        self.holdings = Holdings(self.dest)
        self.committer = Committer(self.dest, self.holdings)
        self.activity = ActivityLedger(self.dest, self.settings, self.workdir, self.buffers)

    def tick(self, count: int = 1) -> None:
        if self.progress is not None:
            self.progress(count)
