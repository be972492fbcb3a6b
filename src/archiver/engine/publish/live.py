"""The ledger's side of a publish: every unit's committed head, its live files and retired ones.

The tables are a function of this: a table's current snapshot must hold exactly the
files the heads name for it. Heads are read whole, by one listing of the ledger and
one GET per unit (day, split child, activity day), concurrently.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from archiver.engine import ledger
from archiver.engine.index import read_head
from archiver.engine.ledger import FileRef, Head
from archiver.storage.store import ObjectStore

READ_CONCURRENCY = 16


@dataclass(slots=True)
class LedgerState:
    """Committed heads by unit, with the ETag each was read at."""

    heads: dict[str, tuple[Head, str]] = field(default_factory=dict)

    def live(self, table: str) -> dict[str, FileRef]:
        """The table's data files that some head names, by key."""
        return {ref.key: ref for head, _ in self.heads.values() for ref in head.files if ref.table == table}

    def retired_keys(self) -> set[str]:
        return {item.key for head, _ in self.heads.values() for item in head.retired}


async def read_ledger(dest: ObjectStore) -> LedgerState:
    """Every unit's head: units are the folders under `_archiver/units/` that hold a `head.json`."""
    units: list[str] = []
    async for page in dest.list_pages(ledger.LEDGER_ROOT, delimiter="/"):
        units.extend(prefix[len(ledger.LEDGER_ROOT) :].rstrip("/") for prefix in page.prefixes)
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(unit: str) -> tuple[str, Head | None, str | None]:
        async with gate:
            head, etag = await read_head(dest, unit)
        return unit, head, etag

    state = LedgerState()
    for unit, head, etag in await asyncio.gather(*(read(unit) for unit in units)):
        if head is not None and etag is not None:
            state.heads[unit] = (head, etag)
    return state


def table_of(key: str) -> str:
    """The table a data file belongs to: the first folder of its key."""
    return key.split("/", 1)[0]
