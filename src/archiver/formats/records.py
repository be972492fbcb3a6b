"""Value types that flow from the pure core to the pipeline.

Row dicts use the column names of `schema.py`. Timestamps in rows are integers,
microseconds since the Unix epoch in UTC (or None); dates are `datetime.date`.
Each table's row has a `TypedDict` (`JobRow`, `JobLineRow`, `ActivityRow`,
`QuarantineRow`) that the code building rows is checked against; the writer takes
any of them as a plain `Row`.

What one object contributes is a `ParsedObject` whose `outcome` is exactly one of
`Contents` (job states and activity events) or `Rejection` (why none).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypedDict, cast

Row = dict[str, Any]
"""A row as the writer takes it: column name to value."""

JsonText = str | bytes
"""JSON text in a string column; UTF-8 bytes are taken as they are (faster for Arrow)."""


class JobRow(TypedDict):
    """One `jobs` row: the contract's columns, then the extensions (see `schema.JOBS`)."""

    job_id: str
    user_id: str | None
    recipe_id: str | None
    recipe_name: str | None
    recipe_path: str | None
    status: str | None
    title: str | None
    started_at: int | None
    completed_at: int | None
    master_job_id: str | None
    parent_job_id: str | None
    calling_job_id: str | None
    calling_recipe_id: str | None
    is_repeat: bool | None
    repeat_count: int | None
    is_test: bool | None
    action_count: int | None
    environment_type: str | None
    environment_id: str | None
    account_id: str | None
    account_name: str | None
    error_type: str | None
    error_message: str | None
    error_id: str | None
    error_adapter: str | None
    error_action: str | None
    error_line_number: int | None
    report: JsonText | None
    lines_truncated: bool | None
    line_count: int | None
    stream_type: str
    source_key: str
    source_etag: str
    user_name: str | None
    user_email: str | None
    job_created_at: int | None
    error_at: int | None
    error_inner_message: str | None
    error_raw: str | None


class JobLineRow(TypedDict):
    """One `job_lines` row (see `schema.JOB_LINES`): a line is (user_id, job_id, line_index)."""

    job_id: str
    user_id: str | None
    line_index: int
    recipe_line_number: int | None
    adapter_name: str | None
    adapter_operation: str | None
    input: JsonText | None
    output: JsonText | None
    error: str | bytes | None
    masked: bool
    duration_s: float | None
    source_key: str
    source_etag: str


class ActivityRow(TypedDict):
    """One `activity` row (see `schema.ACTIVITY`)."""

    event_id: str | None
    event: str | None
    category: str
    occurred_at: int
    user_id: str | None
    user_name: str | None
    user_email: str | None
    team_id: str | None
    team_name: str | None
    environment_type: str | None
    resource_type: str | None
    resource_id: str | None
    resource_name: str | None
    resource_path: str | None
    ip_address: str | None
    user_agent: str | None
    details: JsonText | None
    source_key: str
    source_etag: str
    stream_type: str


class QuarantineRow(TypedDict):
    """One `quarantine` row (see `schema.QUARANTINE`)."""

    source_key: str
    source_etag: str
    size: int
    reason: str
    detail: str


def as_row(row: JobRow | JobLineRow | ActivityRow | QuarantineRow) -> Row:
    """A typed row as the writer takes it (the same dict: TypedDicts are plain dicts at run time)."""
    return cast(Row, row)


class Reason(StrEnum):
    """Stable quarantine reason codes (the `quarantine.reason` column)."""

    EMPTY = "empty"
    INVALID_JSON = "invalid_json"
    TRUNCATED = "truncated"
    INVALID_UTF8 = "invalid_utf8"
    UNRECOGNIZED = "unrecognized"
    TOO_LARGE = "too_large"
    MISSING_FIELD = "missing_field"
    INVALID_VALUE = "invalid_value"


REASON_EMPTY = Reason.EMPTY
REASON_INVALID_JSON = Reason.INVALID_JSON
REASON_TRUNCATED = Reason.TRUNCATED
REASON_INVALID_UTF8 = Reason.INVALID_UTF8
REASON_UNRECOGNIZED = Reason.UNRECOGNIZED
REASON_TOO_LARGE = Reason.TOO_LARGE
REASON_MISSING_FIELD = Reason.MISSING_FIELD
REASON_INVALID_VALUE = Reason.INVALID_VALUE


@dataclass(slots=True)
class JobState:
    """One job as one source object describes it: its `jobs` row and its `job_lines` rows.

    `notes` says where the object disagreed with itself and how that was settled (for
    example a job id in the body that differs from the key's); the run report counts them.
    A note may name ids, never a payload value.
    """

    job_id: str
    day: dt.date
    row: Row
    lines: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ActivityEvent:
    """One user-activity event, as an `activity` row."""

    day: dt.date
    row: Row


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an object cannot be archived: a stable reason code and a readable detail."""

    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Contents:
    """What an archivable object holds: its job states and activity events, in document order."""

    jobs: list[JobState] = field(default_factory=list)
    activity: list[ActivityEvent] = field(default_factory=list)


Outcome = Contents | Rejection


class ParsedObject:
    """Everything one source object contributes: its `Contents`, or the `Rejection` that says why none.

    `outcome` is exactly one of the two. `jobs`, `activity` and `rejection` read it for
    callers that prefer attributes: a rejected object has no jobs and no activity.
    `ParsedObject(rejection=...)` is the same as `ParsedObject(Rejection(...))`.
    """

    __slots__ = ("outcome",)

    def __init__(self, outcome: Outcome | None = None, *, rejection: Rejection | None = None) -> None:
        if (outcome is None) == (rejection is None):
            raise TypeError("ParsedObject takes exactly one of an outcome and a rejection")
        self.outcome: Outcome = rejection if rejection is not None else cast(Outcome, outcome)

    @property
    def jobs(self) -> list[JobState]:
        return self.outcome.jobs if isinstance(self.outcome, Contents) else []

    @property
    def activity(self) -> list[ActivityEvent]:
        return self.outcome.activity if isinstance(self.outcome, Contents) else []

    @property
    def rejection(self) -> Rejection | None:
        return self.outcome if isinstance(self.outcome, Rejection) else None

    @property
    def notes(self) -> list[str]:
        """Every note of the object's job states (see `JobState.notes`)."""
        return [note for state in self.jobs for note in state.notes]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParsedObject) and self.outcome == other.outcome

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ParsedObject({self.outcome!r})"
