"""Which of several objects describing one job holds its latest state.

A terminal status beats a non-terminal one, then the later `completed_at`, then
the later object (the file name's STAMP, then the listing's LastModified, then
the key itself so the choice never depends on arrival order).
"""

from __future__ import annotations

from typing import NamedTuple

NON_TERMINAL_STATUSES = frozenset(
    {
        "pending",
        "queued",
        "running",
        "started",
        "processing",
        "in_progress",
        "retrying",
        "waiting",
        "scheduled",
        "suspended",
        "paused",
        "created",
    }
)

_MISSING = -(2**62)


class Rank(NamedTuple):
    """Ordering key of one version of a job: the greatest Rank wins."""

    terminal: bool
    completed_us: int
    stamp_us: int
    modified_us: int
    key: str


def is_terminal(status: str | None) -> bool:
    """Statuses not known to be in progress count as final: `failed`, `succeeded` and any others."""
    return status is not None and status.lower() not in NON_TERMINAL_STATUSES


def rank_of(
    status: str | None,
    completed_us: int | None,
    stamp_us: int | None,
    modified_us: int | None,
    key: str,
) -> Rank:
    return Rank(
        is_terminal(status),
        _MISSING if completed_us is None else completed_us,
        _MISSING if stamp_us is None else stamp_us,
        _MISSING if modified_us is None else modified_us,
        key,
    )
