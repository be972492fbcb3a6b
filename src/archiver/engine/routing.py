"""One root per pass: list it, skip it if its listing is unchanged, route its objects to units in batches.

A root whose listing fingerprint has a `seen-` marker is done: a rerun costs its
LISTs and nothing else. Otherwise the root's unit tree is loaded and its objects
are routed, in key order, to the unit that holds their job folder. A unit whose
share grows past `unit_max_objects` is sealed and split at folder boundaries
picked while listing, then its range is listed again and routed to its children;
no batch ever holds more than `unit_max_objects` objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from archiver.engine import ledger
from archiver.engine.context import RunContext
from archiver.engine.index import moved_heads, read_head, read_unit_index
from archiver.engine.ledger import Fingerprint, Head
from archiver.engine.listing import SourcePlan, iter_root
from archiver.engine.tree import BoundaryPicker, Leaf, UnitState, UnitTree, sealed
from archiver.engine.units import folder_of, unit_day, unit_owner
from archiver.errors import ArchiverError, ConfigError, PreconditionFailedError
from archiver.formats.layout import is_json_key
from archiver.storage.store import ObjectInfo, ObjectStore

LOAD_CONCURRENCY = 8
FILE_CHECK_ATTEMPTS = 4
"""Times the data files are listed again after heads that named a gap turned out to have moved."""

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """Objects routed to one unit, for a worker."""

    tree: UnitTree
    unit: str
    objects: list[ObjectInfo]
    digest: str | None = None
    """Fingerprint of the objects routed to the unit: with a `settled-` marker of it, nothing to do."""


async def missing_files(dest: ObjectStore, tree: UnitTree) -> set[str]:
    """Data files the root's committed heads name that are gone from the archive or damaged.

    Damaged means listed with another size than the head recorded (truncated,
    emptied, rewritten). A file missing because a commit replaced it after the
    tree was read is no damage: the heads that name a gap are read again first.
    """
    missing: set[str] = set()
    for _ in range(FILE_CHECK_ATTEMPTS):
        missing = await _absent_or_damaged(dest, tree)
        suspects = {u: (s.head, s.etag) for u, s in tree.states.items() if missing & s.head.file_keys()}
        moved = await moved_heads(dest, suspects)
        if not moved:
            break
        for unit, (head, etag) in moved.items():
            tree.states[unit] = UnitState(head, etag)
            if head.sealed and unit not in tree.held:
                await _read_held(dest, tree, unit, tree.states[unit])
    if missing:
        log.info(
            "%s: %d data files its ledger names are missing or damaged; repairing", tree.root, len(missing)
        )
    return missing


async def _absent_or_damaged(dest: ObjectStore, tree: UnitTree) -> set[str]:
    refs = [ref for state in tree.states.values() for ref in state.head.files]
    if not refs:
        return set()
    present: dict[str, int] = {}
    for folder in sorted(
        {ref.key.rsplit("/", 1)[0] + "/" for ref in refs if not ref.key.startswith("quarantine/")}
    ):
        async for page in dest.list_pages(folder, delimiter="/"):
            present.update((info.key, info.size) for info in page.objects)
    owners = {ledger.file_owner(unit) for unit in tree.states}
    for owner in sorted(owners):
        async for page in dest.list_pages(f"quarantine/{owner}"):
            present.update((info.key, info.size) for info in page.objects)
    missing, damaged = ledger.absent_or_damaged(refs, present)
    return missing | damaged


def data_prefixes(root: str) -> list[str]:
    """Where a root's own data files are: its day's jobs and lines, its quarantine files."""
    owner = unit_owner(root)
    day = unit_day(root)
    prefixes = [f"quarantine/{owner}"]
    if day is not None:
        prefixes += [f"jobs/date={day.isoformat()}/", f"job_lines/date={day.isoformat()}/"]
    return prefixes


async def load_tree(dest: ObjectStore, root: str, units: list[str] | None = None) -> UnitTree:
    """The heads of a root's units and the folders sealed units keep.

    `units` are the units a ledger listing named; without one, the root's head and the
    children every sealed head names, level by level (a GET each, no LIST).
    """
    tree = UnitTree(root)
    gate = asyncio.Semaphore(LOAD_CONCURRENCY)

    async def load(unit: str) -> None:
        async with gate:
            head, etag = await read_head(dest, unit)
            if head is not None:
                tree.states[unit] = UnitState(head, etag)

    pending = [root] if units is None else units
    while pending:
        await asyncio.gather(*(load(unit) for unit in pending))
        pending = [] if units is not None else _unread_children(tree, pending)
    for unit, state in list(tree.states.items()):
        if state.head.sealed:
            async with gate:
                await _read_held(dest, tree, unit, state)
    return tree


def _unread_children(tree: UnitTree, read: list[str]) -> list[str]:
    return [
        child.unit
        for unit in read
        if unit in tree.states
        for child in tree.states[unit].head.children
        if child.unit not in tree.states
    ]


async def _read_held(dest: ObjectStore, tree: UnitTree, unit: str, state: UnitState) -> None:
    """The folders a sealed unit keeps, from its index (and its head, if a commit replaced it meanwhile)."""
    head, etag, index = await read_unit_index(dest, unit, state.head, state.etag)
    tree.states[unit] = UnitState(head, etag)
    tree.held[unit] = index.folders()


@dataclass(slots=True)
class _Route:
    """Objects routed to one unit so far in a pass, or, once too many, the split points it needs."""

    objects: list[ObjectInfo] = field(default_factory=list)
    picker: BoundaryPicker | None = None


class RootPass:
    """Lists one root (or one unit's range of it) and yields batches of routed objects."""

    def __init__(
        self,
        ctx: RunContext,
        plan: SourcePlan,
        root: str,
        scope: str | None = None,
        *,
        use_markers: bool = True,
    ) -> None:
        self.ctx = ctx
        self.plan = plan
        self.root = root
        self.scope = scope or root
        self.use_markers = use_markers
        self.fingerprint = Fingerprint()
        self.tree: UnitTree | None = None
        self.skipped_whole = False
        self.routed: dict[str, int] = defaultdict(int)

    @property
    def limit(self) -> int:
        return self.ctx.settings.unit_max_objects

    def _seen_markers(self) -> set[str]:
        prefix = ledger.seen_key(self.scope, "")
        return {key for key in self.ctx.ledgers.of(self.scope) if key.startswith(prefix)}

    async def _range(self) -> tuple[str | None, str | None]:
        if self.scope == self.root:
            return None, None
        try:
            return (await self._tree()).range_of(self.scope)
        except KeyError:
            raise ConfigError(
                f"unit {self.scope} is not in the archive's split of {self.root}: "
                f"print the units with `archiver plan SOURCE DEST`"
            ) from None

    async def _tree(self) -> UnitTree:
        if self.tree is None:
            self.tree = await load_tree(self.ctx.dest, self.root, self.ctx.ledgers.units_of_root(self.root))
        return self.tree

    async def _listing(self, lo: str | None, hi: str | None, *, count: bool) -> AsyncIterator[ObjectInfo]:
        """The JSON objects of the range; with `count`, the report counts them and the fingerprint grows."""
        async for info in iter_root(self.ctx.source, self.plan, self.root, lo, hi):
            if count:
                self.ctx.report.objects_listed += 1
            if not is_json_key(info.key):
                if count:
                    self.ctx.report.objects_skipped += 1
                continue
            if count:
                self.fingerprint.add(info.key, info.etag)
            yield info

    async def marker_digest(self) -> str:
        """The source listing's fingerprint joined with the root's data files as they are now.

        A deleted data file changes it, so a rerun notices (and repairs) instead of
        skipping the root. The files come from the run's holdings (listed once for
        every root at the run's start, with its own commits applied).
        """
        data = Fingerprint()
        for prefix in data_prefixes(self.root):
            for key, size in await self.ctx.holdings.under(prefix):
                data.add(key, str(size))  # names and sizes: a copied archive still matches
        return ledger.seen_digest(self.fingerprint.hexdigest(), data.hexdigest())

    async def batches(self) -> AsyncIterator[Batch]:
        lo, hi = await self._range()
        kept: list[ObjectInfo] | None = None
        counted = False
        if self.use_markers and self._seen_markers():
            counted, kept = True, []
            async for info in self._listing(lo, hi, count=True):
                if kept is not None:
                    kept.append(info)
                    if len(kept) > self.limit:
                        kept = None
            if ledger.seen_key(self.scope, await self.marker_digest()) in self._seen_markers():
                self.ctx.report.objects_skipped += self.fingerprint.count
                self.skipped_whole = True
                return
        tree = await self._tree()
        tree.missing = await missing_files(self.ctx.dest, tree)
        source = _replay(kept) if kept is not None else self._listing(lo, hi, count=not counted)
        batched: set[str] = set()
        async for batch in self._route(tree, source):
            batched.add(batch.unit)
            yield batch
        # A unit that lost a data file is repaired (or reports what is lost) even with nothing listed.
        for unit, state in sorted(tree.states.items()):
            if unit not in batched and tree.missing & state.head.file_keys():
                yield Batch(tree, unit, [])

    async def _route(
        self, tree: UnitTree, source: AsyncIterator[ObjectInfo], whole: str | None = None
    ) -> AsyncIterator[Batch]:
        """Batches per unit, a leaf's batch as soon as the listing has passed its range.

        `whole` names a unit that has no split point (one big folder): it is not split again.
        """
        routes: dict[str, _Route] = {}
        splitting: list[str] = []
        open_leaf: str | None = None
        async for info in source:
            folder = folder_of(info.key)
            unit = tree.route(folder)
            self.routed[unit] += 1
            if not tree.state(unit).head.sealed and unit != open_leaf:
                if open_leaf is not None and (batch := self._close(tree, routes, open_leaf)) is not None:
                    yield batch
                open_leaf = unit
            route = routes.setdefault(unit, _Route())
            if route.picker is not None:
                route.picker.add(folder)
                continue
            route.objects.append(info)
            if len(route.objects) > self.limit and not tree.state(unit).head.sealed and unit != whole:
                route.picker = BoundaryPicker(self.limit // 2)
                for held in route.objects:
                    route.picker.add(folder_of(held.key))
                route.objects = []
                splitting.append(unit)
        for unit in sorted(routes):
            if (batch := self._close(tree, routes, unit)) is not None:
                yield batch
        for unit in splitting:
            picker = routes[unit].picker
            assert picker is not None
            lo, hi = tree.range_of(unit)
            if not picker.boundaries:
                # No folder starts where a cut could fall (one job's folder is most of it): a
                # split would hand everything to one child, so the unit takes it whole.
                async for batch in self._route(tree, self._listing(lo, hi, count=False), whole=unit):
                    yield batch
            elif await self._seal(tree, unit, picker.boundaries):
                async for batch in self._route(tree, self._listing(lo, hi, count=False)):
                    yield batch
            else:
                # Its objects were set aside for the split: never let the root look done without them.
                raise ArchiverError(
                    f"unit {unit}: could not record its split (it kept changing)", retryable=True
                )

    def _close(self, tree: UnitTree, routes: dict[str, _Route], unit: str) -> Batch | None:
        """The unit's batch, or None when its marker says its objects are all archived already."""
        route = routes.get(unit)
        if route is None or route.picker is not None or not route.objects:
            return None
        objects, route.objects = route.objects, []
        digest = ledger.listing_fingerprint((info.key, info.etag) for info in objects)
        head = tree.state(unit).head
        settled = ledger.settled_key(unit, digest) in self.ctx.ledgers.of(unit)
        waiting = bool(head.retired) and not self.ctx.published_tables  # retired files this run deletes
        if settled and not waiting and not tree.missing & head.file_keys():
            self.ctx.report.objects_skipped += len(objects)
            return None
        return Batch(tree, unit, objects, digest)

    async def _seal(self, tree: UnitTree, unit: str, boundaries: list[str]) -> bool:
        """Seal a unit with children at `boundaries`; if a rival changed it first, use what it wrote."""
        for _ in range(3):
            state = tree.state(unit)
            if state.head.sealed:
                return True
            head = sealed(state.head, boundaries)
            body = ledger.encode_head(head)
            try:
                if state.etag is None:
                    etag = await self.ctx.dest.put(ledger.head_key(unit), body, if_none_match=True)
                else:
                    etag = await self.ctx.dest.put(ledger.head_key(unit), body, if_match=state.etag)
            except PreconditionFailedError:
                await self._reload(tree, unit)
                continue
            await _read_held(self.ctx.dest, tree, unit, UnitState(head, etag))
            self.ctx.report.units_sealed += 1
            log.info("unit %s split into %d units", unit, len(head.children))
            return True
        return False

    async def _reload(self, tree: UnitTree, unit: str) -> None:
        head, etag = await read_head(self.ctx.dest, unit)
        if head is None:
            return
        tree.states[unit] = UnitState(head, etag)
        if head.sealed:
            await _read_held(self.ctx.dest, tree, unit, tree.states[unit])

    def leaves(self) -> list[Leaf]:
        """The units that take new folders under the scope (after any split this pass made)."""
        return [] if self.tree is None else self.tree.leaves(self.scope)

    def units_with_retired(self) -> list[Head]:
        """Units whose retired files a later run must delete (none when the publisher owns them)."""
        if self.tree is None or self.ctx.published_tables:
            return []
        return [state.head for state in self.tree.states.values() if state.head.retired]


async def _replay(objects: list[ObjectInfo]) -> AsyncIterator[ObjectInfo]:
    for info in objects:
        yield info
