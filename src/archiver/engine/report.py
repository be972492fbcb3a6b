"""The run report: what a run did, as the contract's `--json` object (plus extensions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

ROW_TABLES = ("jobs", "job_lines", "activity")
MAX_LISTED = 1000


@dataclass(slots=True)
class RunReport:
    """What a run did. `failures` name objects (`key`) or units (`unit`) that could not be done."""

    objects_listed: int = 0
    objects_archived: int = 0
    objects_skipped: int = 0
    objects_quarantined: int = 0
    objects_failed: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_TABLES, 0))
    files_written: int = 0
    files_deleted: int = 0
    units: int = 0
    units_committed: int = 0
    units_sealed: int = 0
    commit_conflicts: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    units_left: list[str] = field(default_factory=list)
    unarchived_keys: list[str] = field(default_factory=list)
    future_days: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    window: dict[str, str | None] = field(default_factory=dict)
    policy: str = ""
    """The digest of the redaction policy this run wrote rows under."""
    by_store: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per store ("source", "dest"): requests by kind plus bytes_read and bytes_written."""
    publish: dict[str, object] | None = None
    """The publish that ended the run (`PublishReport.as_dict`), when the archive has Iceberg tables."""
    listing: dict[str, int] = field(default_factory=dict)
    """How many workspace `jobs/` folders each listing plan listed (`flat`, `prefix`, `folders`)."""
    days: list[str] = field(default_factory=list)
    """The roots the run went through (not in the JSON report: the watermark is computed from it)."""

    @property
    def failed_units(self) -> list[str]:
        return [failure["unit"] for failure in self.failures if "unit" in failure]

    @property
    def failed_keys(self) -> list[str]:
        return [failure["key"] for failure in self.failures if "key" in failure]

    def add_rows(self, rows: Mapping[str, int]) -> None:
        _add_counts(self.rows, rows)

    def add_store_use(self, role: str, use: Mapping[str, int]) -> None:
        _add_counts(self.by_store.setdefault(role, {}), use)

    def absorb(self, other: RunReport) -> None:
        """Add another run's report (a shard's) into this one: counts added up, lists joined.

        `seconds` is left alone: runs that overlap in time do not add up.
        """
        for item in fields(RunReport):
            name = item.name
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "window":
                self.window = theirs or mine
            elif name == "by_store":
                for role, use in theirs.items():
                    self.add_store_use(role, use)
            elif isinstance(theirs, dict):
                _add_counts(mine, theirs)
            elif isinstance(theirs, list):
                mine.extend(theirs)
            elif isinstance(theirs, int):
                setattr(self, name, mine + theirs)
            elif isinstance(theirs, str):
                setattr(self, name, theirs or mine)

    def as_dict(self) -> dict[str, object]:
        return {
            "objects_listed": self.objects_listed,
            "objects_archived": self.objects_archived,
            "objects_skipped": self.objects_skipped,
            "objects_quarantined": self.objects_quarantined,
            "rows": dict(self.rows),
            "files_written": self.files_written,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "requests": dict(self.requests),
            "seconds": round(self.seconds, 3),
            "objects_failed": self.objects_failed,
            "files_deleted": self.files_deleted,
            "units": self.units,
            "units_committed": self.units_committed,
            "units_sealed": self.units_sealed,
            "commit_conflicts": self.commit_conflicts,
            "units_failed": len(self.failed_units),
            "units_left": list(self.units_left),
            "future_days": list(self.future_days),
            "missing_files": self.missing_files[:MAX_LISTED],
            "id_conflicts": len(self.notes),
            "notes": self.notes[:MAX_LISTED],
            "window": dict(self.window),
            "policy": self.policy,
            "by_store": {role: dict(use) for role, use in self.by_store.items()},
            "listing": dict(self.listing),
            "failures": self.failures[:MAX_LISTED],
        } | ({"publish": self.publish} if self.publish is not None else {})


def _add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    for name, count in more.items():
        total[name] = total.get(name, 0) + count
