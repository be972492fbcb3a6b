"""`archiver verify`: prove a window of the source is fully archived, from LISTs and the ledgers alone.

Every JSON object in the window must be held by the index of the unit it routes
to, under the same ETag (archived, superseded by a later state of its job, or
quarantined), and every data file a ledger names must exist. Data files of the
verified units that no ledger names are orphans; files retired by a recent
commit and waiting out their grace period are not. Source objects are never
read, so verifying costs LISTs and the ledgers' GETs. A clean verify is what
makes it safe to let a lifecycle rule expire the raw JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from archiver.engine import ledger
from archiver.engine.activity import ACTIVITY_ROOT
from archiver.engine.index import UnitIndex, read_head, read_index
from archiver.engine.ledger import Head, Outcome
from archiver.engine.listing import ListingOptions, Window, iter_root, plan_source
from archiver.engine.routing import load_tree
from archiver.engine.tree import UnitTree
from archiver.engine.units import folder_of, root_date
from archiver.formats.layout import is_json_key
from archiver.formats.schema import PARTITIONED_TABLES
from archiver.storage.store import ObjectStore

MAX_LISTED_PROBLEMS = 1000


@dataclass(slots=True)
class VerifyReport:
    """What verify found; `ok` is false on any gap."""

    objects_checked: int = 0
    objects_archived: int = 0
    objects_quarantined: int = 0
    objects_skipped: int = 0
    units: int = 0
    files_checked: int = 0
    not_archived: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    window: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.not_archived or self.stale or self.missing_files or self.orphan_files)

    def problems(self) -> list[str]:
        return self.not_archived + self.stale + self.missing_files + self.orphan_files

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "objects_checked": self.objects_checked,
            "objects_archived": self.objects_archived,
            "objects_quarantined": self.objects_quarantined,
            "objects_skipped": self.objects_skipped,
            "units": self.units,
            "files_checked": self.files_checked,
            "not_archived": self.not_archived[:MAX_LISTED_PROBLEMS],
            "stale": self.stale[:MAX_LISTED_PROBLEMS],
            "missing_files": self.missing_files[:MAX_LISTED_PROBLEMS],
            "orphan_files": self.orphan_files[:MAX_LISTED_PROBLEMS],
            "counts": {
                "not_archived": len(self.not_archived),
                "stale": len(self.stale),
                "missing_files": len(self.missing_files),
                "orphan_files": len(self.orphan_files),
            },
            "window": dict(self.window),
        }


class _Indexes:
    """Indexes of the unit being checked and of sealed ones; a leaf's is dropped when the next one starts."""

    def __init__(self, dest: ObjectStore, tree: UnitTree) -> None:
        self.dest = dest
        self.tree = tree
        self.cache: dict[str, UnitIndex] = {}
        self.leaf: str | None = None

    async def of(self, unit: str) -> UnitIndex:
        head = self.tree.state(unit).head
        if not head.sealed and unit != self.leaf:
            if self.leaf is not None:
                self.cache.pop(self.leaf, None)
            self.leaf = unit
        if unit not in self.cache:
            self.cache[unit] = await read_index(self.dest, head)
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
    trees: list[UnitTree] = []
    for root in plan.roots():
        report.units += 1
        tree = await load_tree(dest, root, await _units_of_root(dest, root))
        trees.append(tree)
        indexes = _Indexes(dest, tree)
        async for info in iter_root(source, plan, root):
            if not is_json_key(info.key):
                report.objects_skipped += 1
                continue
            report.objects_checked += 1
            entries = (await indexes.of(tree.route(folder_of(info.key)))).get(info.key)
            if not entries:
                report.not_archived.append(info.key)
            elif entries[0].etag != info.etag:
                report.stale.append(info.key)
            elif entries[0].outcome is Outcome.QUARANTINE:
                report.objects_quarantined += 1
            else:
                report.objects_archived += 1
    heads = [state.head for tree in trees for state in tree.states.values() if state.etag is not None]
    heads += await _activity_heads(dest, since, until)
    await _check_files(dest, heads, report)
    return report


async def _activity_heads(dest: ObjectStore, since: dt.date | None, until: dt.date | None) -> list[Head]:
    """The heads of the activity ledgers of the window's days (they own the `activity` rows)."""
    prefix = f"{ledger.LEDGER_ROOT}{ACTIVITY_ROOT}"
    start_after = f"{prefix}{since - dt.timedelta(days=1)}~" if since else None
    heads: list[Head] = []
    async for page in dest.list_pages(prefix, start_after=start_after):
        for info in page.objects:
            unit = info.key[len(ledger.LEDGER_ROOT) :].split("/", 1)[0]
            day = root_date(unit)
            if not info.key.endswith("/" + ledger.HEAD_NAME) or (until and day and day > until):
                continue
            head, _ = await read_head(dest, unit)
            if head is not None:
                heads.append(head)
    return heads


async def _units_of_root(dest: ObjectStore, root: str) -> list[str]:
    units: set[str] = set()
    async for page in dest.list_pages(f"{ledger.LEDGER_ROOT}{root}"):
        for info in page.objects:
            unit = info.key[len(ledger.LEDGER_ROOT) :].split("/", 1)[0]
            if unit == root or unit.startswith(root + "."):
                units.add(unit)
    return sorted(units)


async def _check_files(dest: ObjectStore, heads: list[Head], report: VerifyReport) -> None:
    """Every referenced file exists; every data file of the verified units is referenced (or retired)."""
    referenced = {ref.key for head in heads for ref in head.files}
    retired = {item.key for head in heads for item in head.retired}
    folders = {key.rsplit("/", 1)[0] + "/" for key in referenced | retired}
    owners = {ledger.file_owner(head.unit) for head in heads}
    for head in heads:
        day = root_date(head.unit)
        if day is not None:
            folders.update(f"{table}/date={day.isoformat()}/" for table in PARTITIONED_TABLES)
    folders.add("quarantine/")
    present: set[str] = set()
    for folder in sorted(folders):
        async for page in dest.list_pages(folder, delimiter="/"):
            present.update(info.key for info in page.objects if info.key.endswith(".parquet"))
    report.files_checked = len(referenced)
    report.missing_files = sorted(referenced - present)
    report.orphan_files = sorted(
        key for key in present - referenced - retired if key.rsplit("/", 1)[-1].split("-", 1)[0] in owners
    )
