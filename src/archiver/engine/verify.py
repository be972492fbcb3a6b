"""`archiver verify`: prove a window of the source is fully archived, from LISTs and the ledgers alone.

Every JSON object in the window must be held by its unit's source index under
the same ETag (archived, superseded by a later state of its job, or quarantined),
and every data file a ledger names must exist. Data files no ledger names are
reported as orphans. Source objects are never read, so verifying costs LISTs and
one GET per unit ledger. A clean verify is what makes it safe to let a lifecycle
rule expire the raw JSON.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from archiver.engine import ledger
from archiver.engine.ledger import Head
from archiver.engine.pipeline import load_head, load_index
from archiver.engine.units import unit_day
from archiver.engine.walker import Window, list_unit, plan_source
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


async def verify(
    source: ObjectStore, dest: ObjectStore, since: dt.date | None = None, until: dt.date | None = None
) -> VerifyReport:
    """Check the window [since, until] of `source` against the archive in `dest`."""
    window = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
    report = VerifyReport(window=window)
    plan = await plan_source(source, Window(since, until))
    heads: dict[str, Head] = {}
    for unit in plan.units():
        report.units += 1
        head, head_etag = await load_head(dest, unit)
        index = await load_index(dest, head)
        if head_etag is not None:
            heads[unit] = head
        for info in await list_unit(source, plan, unit):
            if not is_json_key(info.key):
                report.objects_skipped += 1
                continue
            report.objects_checked += 1
            entries = index.get(info.key)
            if not entries:
                report.not_archived.append(info.key)
            elif entries[0].etag != info.etag:
                report.stale.append(info.key)
            elif entries[0].outcome == ledger.OUTCOME_QUARANTINE:
                report.objects_quarantined += 1
            else:
                report.objects_archived += 1
    await _check_files(dest, heads, report)
    return report


async def _check_files(dest: ObjectStore, heads: dict[str, Head], report: VerifyReport) -> None:
    """Every referenced file exists; every data file in the checked partitions is referenced."""
    referenced = {ref.key for head in heads.values() for ref in head.files}
    folders = {ref.key.rsplit("/", 1)[0] + "/" for head in heads.values() for ref in head.files}
    owners = {ledger.file_owner(unit) for unit in heads}
    for unit in heads:
        day = unit_day(unit)
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
        key for key in present - referenced if key.rsplit("/", 1)[-1].split("-", 1)[0] in owners
    )
