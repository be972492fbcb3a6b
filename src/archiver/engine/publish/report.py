"""What a publish did, and its error: light, so importing them loads no pyiceberg."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from archiver.errors import ArchiverError


class PublishError(ArchiverError):
    """The tables could not be brought to the ledger's state; the report says which and why."""

    retryable = True


class TableChange(Protocol):
    """One table's change (`tables.TableChange`): whether it committed, and its files after."""

    committed: bool
    files: set[str]

    def as_dict(self) -> dict[str, object]: ...


@dataclass(slots=True)
class PublishReport:
    """What one publish did."""

    catalog: str | None = None
    tables: dict[str, TableChange] = field(default_factory=dict)
    commits: int = 0
    commit_conflicts: int = 0
    snapshots_expired: int = 0
    files_deleted: int = 0
    rebuilt: bool = False
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "catalog": self.catalog,
            "tables": {name: change.as_dict() for name, change in sorted(self.tables.items())},
            "commits": self.commits,
            "commit_conflicts": self.commit_conflicts,
            "snapshots_expired": self.snapshots_expired,
            "files_deleted": self.files_deleted,
            "rebuilt": self.rebuilt,
            "failures": self.failures,
            "notes": self.notes,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }
