"""Value types that flow from the pure core to the pipeline.

Row dicts use the column names of `schema.py`. Timestamps in rows are integers,
microseconds since the Unix epoch in UTC (or None); dates are `datetime.date`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass(slots=True)
class JobState:
    """One job as one source object describes it: its `jobs` row and its `job_lines` rows."""

    job_id: str
    day: dt.date
    row: Row
    lines: list[Row] = field(default_factory=list)


@dataclass(slots=True)
class ActivityEvent:
    """One user-activity event, as an `activity` row."""

    day: dt.date
    row: Row


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an object cannot be archived: a stable reason code and a readable detail."""

    reason: str
    detail: str


@dataclass(slots=True)
class ParsedObject:
    """Everything one source object contributes; exactly one of the fields is non-empty."""

    jobs: list[JobState] = field(default_factory=list)
    activity: list[ActivityEvent] = field(default_factory=list)
    rejection: Rejection | None = None


# Stable quarantine reason codes.
REASON_EMPTY = "empty"
REASON_INVALID_JSON = "invalid_json"
REASON_TRUNCATED = "truncated"
REASON_INVALID_UTF8 = "invalid_utf8"
REASON_UNRECOGNIZED = "unrecognized"
REASON_TOO_LARGE = "too_large"
REASON_MISSING_FIELD = "missing_field"
REASON_INVALID_VALUE = "invalid_value"
