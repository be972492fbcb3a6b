"""`archiver verify`: prove a window of the source is fully archived, from LISTs and the ledgers alone.

Every JSON object in the window must be held by the index of the unit it routes
to, under the same ETag (archived, superseded by a later state of its job, or
quarantined), and every data file a ledger names must exist with the size its
head recorded (a file truncated, emptied or rewritten in place is damaged). Data
files of the verified units that no ledger names are orphans; files retired by a
recent commit and waiting out their grace period are not. Source objects are
never read, so verifying costs LISTs and the ledgers' GETs. A clean verify is
what makes it safe to let a lifecycle rule expire the raw JSON.

Commits may run meanwhile: a head whose files vanish under verify, or whose unit
shows an object or a file it does not name, is read again (if it has moved on)
before anything is called a gap. A
ledger file this version cannot read fails its unit (named in `failures`), and
the other units are still checked.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from archiver.engine import ledger
from archiver.engine.activity import ACTIVITY_ROOT
from archiver.engine.index import UnitIndex, moved_heads, read_head, read_unit_index
from archiver.engine.ledger import Head, IndexEntry, Outcome, absent_or_damaged
from archiver.engine.listing import ListingOptions, SourcePlan, Window, iter_root, plan_source
from archiver.engine.routing import FILE_CHECK_ATTEMPTS, load_tree
from archiver.engine.tree import UnitState, UnitTree
from archiver.engine.units import folder_of, root_date
from archiver.engine.writer import UNRECORDED
from archiver.errors import LedgerFormatError
from archiver.formats.layout import is_json_key
from archiver.formats.schema import PARTITIONED_TABLES
from archiver.storage.store import ObjectInfo, ObjectStore

MAX_LISTED_PROBLEMS = 1000


@dataclass(slots=True)
class VerifyReport:
    """What verify found; `ok` is false on any gap, or when a unit's ledger could not be read."""

    PROBLEMS: ClassVar[tuple[str, ...]] = (
        "not_archived",
        "stale",
        "missing_files",
        "damaged_files",
        "orphan_files",
    )

    objects_checked: int = 0
    objects_archived: int = 0
    objects_quarantined: int = 0
    objects_skipped: int = 0
    units: int = 0
    files_checked: int = 0
    not_archived: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    damaged_files: list[str] = field(default_factory=list)
    """Files a head names that are listed with another size than the head recorded."""
    orphan_files: list[str] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    """Units whose ledger could not be read (`unit`, `file`, `error`, `kind`): they are not proven."""
    window: dict[str, str | None] = field(default_factory=dict)
    policies: dict[str, int] = field(default_factory=dict)
    """Data files of the window by the redaction policy (digest) their rows were written under."""

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems()

    def problems(self) -> list[str]:
        return [item for name in self.PROBLEMS for item in self.problem_list(name)]

    def problem_list(self, name: str) -> list[str]:
        found: list[str] = getattr(self, name)
        return found

    def fail(self, unit: str, error: LedgerFormatError) -> None:
        self.failures.append(
            {
                "unit": error.unit or unit,
                "file": error.key or "",
                "error": str(error),
                "kind": type(error).__name__,
            }
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "objects_checked": self.objects_checked,
            "objects_archived": self.objects_archived,
            "objects_quarantined": self.objects_quarantined,
            "objects_skipped": self.objects_skipped,
            "units": self.units,
            "files_checked": self.files_checked,
            **{name: self.problem_list(name)[:MAX_LISTED_PROBLEMS] for name in self.PROBLEMS},
            "failures": self.failures[:MAX_LISTED_PROBLEMS],
            "counts": {name: len(self.problem_list(name)) for name in self.PROBLEMS},
            "window": dict(self.window),
            "policies": dict(sorted(self.policies.items())),
        }


class _Indexes:
    """Indexes of the unit being checked and of sealed ones; a leaf's is dropped when the next one starts."""

    def __init__(self, dest: ObjectStore, tree: UnitTree) -> None:
        self.dest = dest
        self.tree = tree
        self.cache: dict[str, UnitIndex] = {}
        self.leaf: str | None = None

    async def of(self, unit: str) -> UnitIndex:
        state = self.tree.state(unit)
        if not state.head.sealed and unit != self.leaf:
            if self.leaf is not None:
                self.cache.pop(self.leaf, None)
            self.leaf = unit
        if unit not in self.cache:
            head, etag, self.cache[unit] = await read_unit_index(self.dest, unit, state.head, state.etag)
            self.tree.states[unit] = UnitState(head, etag)
        return self.cache[unit]


async def verify(
    source: ObjectStore,
    dest: ObjectStore,
    since: dt.date | None = None,
    until: dt.date | None = None,
    listing: ListingOptions | None = None,
) -> VerifyReport:
    """Check the window [since, until] of `source` against the archive in `dest`, listed as `listing` says."""
    window = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
    report = VerifyReport(window=window)
    plan = await plan_source(source, Window(since, until), listing)
    states: dict[str, UnitState] = {}
    for root in plan.roots():
        report.units += 1
        try:
            tree = await _check_root(source, dest, plan, root, report)
        except LedgerFormatError as error:
            report.fail(root, error)
            continue
        states.update((unit, state) for unit, state in tree.states.items() if state.etag is not None)
    states.update(await _activity_states(dest, since, until, report))
    await _check_files(dest, states, report)
    return report


async def _check_root(
    source: ObjectStore, dest: ObjectStore, plan: SourcePlan, root: str, report: VerifyReport
) -> UnitTree:
    """Every JSON object of the root against the index of the unit it routes to; returns the root's tree."""
    tree = await load_tree(dest, root, await _units_of_root(dest, root))
    indexes = _Indexes(dest, tree)
    gaps: dict[str, list[tuple[ObjectInfo, list[IndexEntry]]]] = defaultdict(list)
    async for info in iter_root(source, plan, root):
        if not is_json_key(info.key):
            report.objects_skipped += 1
            continue
        report.objects_checked += 1
        unit = tree.route(folder_of(info.key))
        entries = (await indexes.of(unit)).get(info.key)
        if entries and entries[0].etag == info.etag:
            _count(report, info, entries)
        else:
            gaps[unit].append((info, entries))
    await _check_gaps_again(dest, tree, gaps, report)
    return tree


async def _check_gaps_again(
    dest: ObjectStore,
    tree: UnitTree,
    gaps: dict[str, list[tuple[ObjectInfo, list[IndexEntry]]]],
    report: VerifyReport,
) -> None:
    """Objects not held as listed, checked again in their unit's new index if a commit ran meanwhile."""
    moved = await moved_heads(dest, {unit: (tree.state(unit).head, tree.state(unit).etag) for unit in gaps})
    for unit, found in sorted(gaps.items()):
        if unit in moved:
            head, etag, index = await read_unit_index(dest, unit, *moved[unit])
            tree.states[unit] = UnitState(head, etag)
            found = [(info, index.get(info.key)) for info, _ in found]
        for info, entries in found:
            _count(report, info, entries)


def _count(report: VerifyReport, info: ObjectInfo, entries: list[IndexEntry]) -> None:
    if not entries:
        report.not_archived.append(info.key)
    elif entries[0].etag != info.etag:
        report.stale.append(info.key)
    elif entries[0].outcome is Outcome.QUARANTINE:
        report.objects_quarantined += 1
    else:
        report.objects_archived += 1


async def _activity_states(
    dest: ObjectStore, since: dt.date | None, until: dt.date | None, report: VerifyReport
) -> dict[str, UnitState]:
    """The heads of the activity ledgers of the window's days (they own the `activity` rows)."""
    prefix = f"{ledger.LEDGER_ROOT}{ACTIVITY_ROOT}"
    start_after = f"{prefix}{since - dt.timedelta(days=1)}~" if since else None
    states: dict[str, UnitState] = {}
    async for page in dest.list_pages(prefix, start_after=start_after):
        for info in page.objects:
            unit = ledger.unit_of(info.key)
            day = root_date(unit)
            if not info.key.endswith("/" + ledger.HEAD_NAME) or (until and day and day > until):
                continue
            try:
                head, etag = await read_head(dest, unit)
            except LedgerFormatError as error:
                report.fail(unit, error)
                continue
            if head is not None:
                states[unit] = UnitState(head, etag)
    return states


async def _units_of_root(dest: ObjectStore, root: str) -> list[str]:
    units: set[str] = set()
    async for page in dest.list_pages(f"{ledger.LEDGER_ROOT}{root}"):
        for info in page.objects:
            unit = ledger.unit_of(info.key)
            if unit == root or unit.startswith(root + "."):
                units.add(unit)
    return sorted(units)


async def _check_files(dest: ObjectStore, states: dict[str, UnitState], report: VerifyReport) -> None:
    """Every referenced file exists at its size; every data file of the verified units is referenced.

    A gap seen through a head that has moved on since it was read (a commit ran
    meanwhile) is checked again against the new head.
    """
    for _ in range(FILE_CHECK_ATTEMPTS):
        heads = [state.head for state in states.values()]
        present = await _listed_files(dest, heads)
        missing, damaged = absent_or_damaged((ref for head in heads for ref in head.files), present)
        orphans = _orphans(heads, present)
        strays = {_owner(key) for key in orphans}
        suspects = {
            unit
            for unit, state in states.items()
            if (missing | damaged) & state.head.file_keys() or ledger.file_owner(unit) in strays
        }
        moved = await moved_heads(dest, {unit: (states[unit].head, states[unit].etag) for unit in suspects})
        if not moved:
            break
        states.update((unit, UnitState(head, etag)) for unit, (head, etag) in moved.items())
    report.files_checked = sum(len(head.files) for head in heads)
    _count_policies(heads, report)
    report.missing_files = sorted(missing)
    report.damaged_files = sorted(damaged)
    report.orphan_files = sorted(orphans)


def _count_policies(heads: list[Head], report: VerifyReport) -> None:
    for head in heads:
        for ref in head.files:
            if ref.table == "quarantine":
                continue  # its rows hold no payload: no policy applies to them
            for digest in ref.policies or (UNRECORDED,):
                report.policies[digest] = report.policies.get(digest, 0) + 1


async def _listed_files(dest: ObjectStore, heads: list[Head]) -> dict[str, int]:
    """Size by key of the data files in every folder the heads' files, days and quarantine live in."""
    folders = {key.rsplit("/", 1)[0] + "/" for head in heads for key in _named(head)}
    for head in heads:
        day = root_date(head.unit)
        if day is not None:
            folders.update(f"{table}/date={day.isoformat()}/" for table in PARTITIONED_TABLES)
    folders.add("quarantine/")
    present: dict[str, int] = {}
    for folder in sorted(folders):
        async for page in dest.list_pages(folder, delimiter="/"):
            present.update((info.key, info.size) for info in page.objects if info.key.endswith(".parquet"))
    return present


def _orphans(heads: list[Head], present: dict[str, int]) -> set[str]:
    """Data files of the heads' units that no head names, retired or live."""
    named = {key for head in heads for key in _named(head)}
    owners = {ledger.file_owner(head.unit) for head in heads}
    return {key for key in present if key not in named and _owner(key) in owners}


def _named(head: Head) -> Iterable[str]:
    yield from head.file_keys()
    yield from (item.key for item in head.retired)


def _owner(key: str) -> str:
    """The owner prefix of a data file's name (`d20240820.3` of `.../d20240820.3-g000002-...parquet`)."""
    return key.rsplit("/", 1)[-1].split("-", 1)[0]
