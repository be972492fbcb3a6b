"""What the archive's data folders hold (key -> size), listed once per run and kept current by its commits.

A root's seen marker joins the fingerprint of its source listing with the names and
sizes of its data files (`jobs/date=D/`, `job_lines/date=D/`, `quarantine/OWNER`), so
a data file deleted or damaged since changes it. Listing those three prefixes for
each day costs three LISTs a day, more than the rest of a day's commit; instead a run
lists the prefixes of all its roots at its start, folder by folder (`jobs/`,
`job_lines/`, `quarantine/`): pages of 1,000 keys from its first prefix, stopping at
the first key past its last, and starting the next page at the next prefix wherever
a page ends on keys no prefix wants. It reads every key of the prefixes and at most a
page of keys between two of them: with a few files a day, a window of days costs a
LIST per folder. Every data file the run's own commits upload or delete is applied to
what was listed, so a digest taken after a commit is the one a listing would give. A
prefix the run did not list first is listed when asked, as before.

A concurrent writer's changes after the listing are not seen: a marker made meanwhile
then names another digest than the next run's listing gives, and that run archives the
root again instead of skipping it (a cost, never a gap). Likewise a data file deleted
or damaged while the run goes on leaves its root's marker naming the files as they
were, so the next run finds the damage. A run of one unit of a split root, which may
run beside runs of its siblings, lists its root's prefixes when it makes the marker.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from archiver.engine.scans import SKIP_REST
from archiver.storage.store import ObjectStore


class Holdings:
    """The data files under the prefixes a run listed, with its own uploads and deletions applied."""

    def __init__(self, dest: ObjectStore) -> None:
        self.dest = dest
        self.sizes: dict[str, int] = {}
        self._keys: list[str] = []
        self._covered: list[str] = []

    def covers(self, key: str) -> bool:
        """Whether `key` (an object key or a prefix) lies under a prefix listed at the start."""
        at = bisect.bisect_right(self._covered, key)
        return at > 0 and key.startswith(self._covered[at - 1])

    async def load(self, prefixes: Iterable[str]) -> None:
        """List every given prefix (once, before any commit of the run)."""
        wanted = _outermost(prefix for prefix in prefixes if prefix and not self.covers(prefix))
        by_folder: dict[str, list[str]] = {}
        for prefix in wanted:
            by_folder.setdefault(prefix.split("/", 1)[0] + "/", []).append(prefix)
        for folder, group in sorted(by_folder.items()):
            await self._scan(folder, group)
        self._covered = _outermost([*self._covered, *wanted])

    async def _scan(self, folder: str, wanted: list[str]) -> None:
        """Pages of `folder` from the first wanted prefix, seeking to the next one past keys none wants."""
        at = 0
        start_after: str | None = _before(wanted[0])
        while start_after is not None:
            seek: str | None = None
            async for page in self.dest.list_pages(folder, start_after=start_after):
                for info in page.objects:
                    while info.key > wanted[at] and not info.key.startswith(wanted[at]):
                        at += 1
                        if at == len(wanted):
                            return  # past the last prefix: the rest of the folder is too
                    if info.key.startswith(wanted[at]):
                        self._set(info.key, info.size)
                if page.last or not page.objects:
                    break
                last = page.objects[-1].key
                if last < wanted[at] and (seek := _before(wanted[at])) > last:
                    break  # the page ended between two prefixes: start again at the next one
            start_after = seek

    async def under(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every data file under `prefix`, in key order."""
        if not self.covers(prefix):
            return [
                (info.key, info.size) async for page in self.dest.list_pages(prefix) for info in page.objects
            ]
        start = bisect.bisect_left(self._keys, prefix)
        found: list[tuple[str, int]] = []
        for key in self._keys[start:]:
            if not key.startswith(prefix):
                break
            found.append((key, self.sizes[key]))
        return found

    def uploaded(self, key: str, size: int) -> None:
        """A commit of this run put `key`."""
        if self.covers(key):
            self._set(key, size)

    def deleted(self, keys: Iterable[str]) -> None:
        """A commit of this run deleted `keys`."""
        for key in keys:
            if self.sizes.pop(key, None) is not None:
                del self._keys[bisect.bisect_left(self._keys, key)]

    def _set(self, key: str, size: int) -> None:
        if key not in self.sizes:
            bisect.insort(self._keys, key)
        self.sizes[key] = size


def _before(prefix: str) -> str:
    """A StartAfter that sorts before every key under `prefix` (and after any other key a writer makes)."""
    return prefix[:-1] + chr(ord(prefix[-1]) - 1) + SKIP_REST


def _outermost(prefixes: Iterable[str]) -> list[str]:
    """The prefixes in key order, leaving out any that another one already covers."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept
