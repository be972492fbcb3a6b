"""Superseded data files when the archive has Iceberg tables: when each may be deleted, and by whom.

Unit commits leave the files they supersede in their head's `retired` list. The
publisher, the only one that knows what the tables' snapshots hold, settles them:

1. Before a table commit removes a retired file from the table, its entry is marked
   `published` (a conditional head write). From then on the table's history tracks the
   file: it is deleted once the snapshot that removed it expires (`expiry.py`).
2. After the commits, entries whose file is in no table are dropped from the heads; a
   file never marked was never in any snapshot (whatever removes a file from a table
   marks it first), so it is deleted at once, before its entry goes.

Head writes are conditional, like a unit's commits: on a rival's commit the head is
read again and the same rule applied to it, a bounded number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from archiver.engine import ledger
from archiver.engine.index import read_head
from archiver.engine.ledger import Head
from archiver.engine.publish.live import LedgerState, table_of
from archiver.errors import ArchiverError, PreconditionFailedError
from archiver.storage.store import ObjectStore

HEAD_ATTEMPTS = 6

log = logging.getLogger(__name__)

Change = Callable[[Head], Head | None]


class LedgerContentionError(ArchiverError):
    """A unit's head kept changing under the publisher; the next publish tries again."""

    retryable = True


async def mark_published(dest: ObjectStore, state: LedgerState, in_tables: set[str]) -> None:
    """Mark every retired file a table still holds, before a commit removes it from the table."""

    def mark(head: Head) -> Head | None:
        due = [item for item in head.retired if not item.published and item.key in in_tables]
        if not due:
            return None
        retired = [replace(item, published=True) if item in due else item for item in head.retired]
        return replace(head, retired=retired)

    for unit in sorted(state.heads):
        await _rewrite_head(dest, state, unit, mark)


async def settle(
    dest: ObjectStore, state: LedgerState, tables: dict[str, set[str]], *, history_gone: bool = False
) -> int:
    """Drop retired entries whose file no table holds; delete the never-published ones' files.

    `tables` holds the file keys of each table whose state is known after the commits;
    entries of other tables wait for a later publish. With `history_gone` (a rebuild:
    the old snapshots are no more) published files are deleted too. Returns files deleted.
    """
    deleted = 0

    def settled(item_key: str) -> bool:
        table = table_of(item_key)
        return table in tables and item_key not in tables[table]

    async def prepare(head: Head) -> list[str]:
        return [
            item.key for item in head.retired if settled(item.key) and (history_gone or not item.published)
        ]

    def drop(head: Head) -> Head | None:
        kept = [item for item in head.retired if not settled(item.key)]
        return None if len(kept) == len(head.retired) else replace(head, retired=kept)

    for unit in sorted(state.heads):
        head, _ = state.heads[unit]
        if not any(settled(item.key) for item in head.retired):
            continue
        doomed = await prepare(head)
        if doomed:
            await dest.delete(doomed)
            deleted += len(doomed)
        deleted += await _rewrite_head(dest, state, unit, drop, before=prepare)
    return deleted


async def _rewrite_head(
    dest: ObjectStore,
    state: LedgerState,
    unit: str,
    change: Change,
    before: Callable[[Head], Awaitable[list[str]]] | None = None,
) -> int:
    """Apply `change` to the unit's head with If-Match, re-reading it after a rival's commit.

    `before` (deletions that must precede the write) runs again on each re-read head;
    returns how many extra files it deleted on re-reads.
    """
    head, etag = state.heads[unit]
    extra = 0
    for attempt in range(HEAD_ATTEMPTS):
        new = change(head)
        if new is None:
            return extra
        try:
            new_etag = await dest.put(ledger.head_key(unit), ledger.encode_head(new), if_match=etag)
        except PreconditionFailedError:
            log.info(
                "unit %s: its head changed while publishing (attempt %d); reading it again", unit, attempt
            )
            current, current_etag = await read_head(dest, unit)
            if current is None or current_etag is None:
                return extra
            head, etag = current, current_etag
            state.heads[unit] = (head, etag)
            if before is not None:
                doomed = await before(head)
                if doomed:
                    await dest.delete(doomed)
                    extra += len(doomed)
            continue
        state.heads[unit] = (new, new_etag)
        return extra
    raise LedgerContentionError(f"unit {unit}: its head kept changing while publishing; publish again")
