"""What the archive must make of each synthetic object, and of a whole corpus.

A `Truth` travels with every object; `Expectation` folds truths into the
`ExpectedArchive` tests compare the archiver's output against, without keeping
any object's body.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KIND_JOB = "job"
KIND_ACTIVITY = "activity"
KIND_QUARANTINE = "quarantine"
KIND_SKIP = "skip"

# Job stream types, as the `jobs.stream_type` column names them.
JOB_HISTORY = "job_history"
JOB_SUMMARY = "job_summary"
JOB_STATUS = "job_status"
JOB_DETAILS = "job_details"

# Activity stream types (the `activity.stream_type` extension column).
USER_ACTIVITY = "user_activity"
ACTIVITY_EVENT = "activity_event"
PROJECT_DEPLOYMENT = "project_deployment"
ACTIVITY_API = "activity_api"

# How a job object is wrapped in its file. Custom wrappers and bare JSON strings
# hold a job-history object (with lines), so their stream type is `job_history`.
ENVELOPE_STREAM: dict[str, str] = {
    "bare": JOB_HISTORY,
    "summary": JOB_SUMMARY,
    "status": JOB_STATUS,
    "details": JOB_DETAILS,
    "log_entries": JOB_HISTORY,
    "workato_event": JOB_HISTORY,
    "json_string": JOB_HISTORY,
}
LINE_ENVELOPES = frozenset({"bare", "details", "log_entries", "workato_event", "json_string"})

QUARANTINE_REASONS = ("empty", "truncated", "invalid_json", "unrecognized")


@dataclass(frozen=True, slots=True)
class Truth:
    """What the archiver must make of one object.

    `kind` is "job", "activity", "quarantine" or "skip". For job objects, `day`,
    `user_id` and `recipe_id` are the key's folders, `is_final` marks the version of
    the job that must win, and `line_count`/`lines_truncated` are None when the
    stream type carries no lines (an oversized job has `line_count` 0 and
    `lines_truncated` True). For activity, `day` is the UTC date of the event (the
    archive's partition) and `user_id` the key's user folder, if any; a project
    deployment names no event, so its `event` is None. Quarantined objects carry the
    expected `reason`, and the key's folders when the key is in the job layout.
    """

    kind: str
    stream_type: str | None = None
    envelope: str | None = None  # how the object is wrapped (see ENVELOPE_STREAM, activity stream types)
    layout: str | None = None  # "standard", "embedded", or None outside the job layout
    format: str | None = None  # "old" / "new" for full job details, else None
    user_id: str | None = None
    recipe_id: str | None = None
    day: dt.date | None = None
    job_id: str | None = None
    status: str | None = None
    is_final: bool = False
    line_count: int | None = None
    lines_truncated: bool | None = None
    masked_lines: int | None = None  # lines with mask_data true
    timed_lines: int | None = None  # lines carrying line_stat (duration_s not null)
    started_us: int | None = None  # UTC microseconds
    completed_us: int | None = None
    error_type: str | None = None
    event: str | None = None
    occurred_us: int | None = None
    reason: str | None = None
    secrets: tuple[str, ...] = ()  # credentials the object echoes (each holds echoes.SECRET_TAG)


@dataclass(frozen=True, slots=True)
class SynthObject:
    """One object of the corpus: its key, its exact bytes, and what it means."""

    key: str
    body: bytes
    truth: Truth


@dataclass(frozen=True, slots=True)
class ExpectedArchive:
    """What an archive built from a corpus must hold, derived from the truths alone."""

    jobs: frozenset[tuple[str, str, int | None, bool | None]]  # (job_id, status, line_count, lines_truncated)
    finals: dict[str, Truth] = field(repr=False)  # job_id -> the winning version
    jobs_by_day: dict[dt.date, int]
    job_lines: int
    masked_lines: int
    timed_lines: int
    activity: int
    activity_by_day: dict[dt.date, int]
    quarantine: dict[str, str] = field(repr=False)  # key -> reason
    skipped: frozenset[str] = field(repr=False)
    secrets: frozenset[str] = field(default=frozenset(), repr=False)  # every credential any object echoes


@dataclass(frozen=True, slots=True)
class CorpusSummary:
    """Counts of a written corpus, plus what the archive built from it must hold."""

    objects: int
    total_bytes: int
    jobs: int  # distinct jobs
    final_jobs: int  # objects holding a job's winning version (== jobs)
    job_versions: int  # every job object, superseded versions included
    job_lines: int  # job_lines rows the archive must hold
    activity_events: int
    quarantined: int
    skipped: int
    by_kind: dict[str, int]
    by_stream_type: dict[str, int]
    by_reason: dict[str, int]
    expected: ExpectedArchive = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain JSON-ready values (for the CLI and reports)."""
        return {
            "objects": self.objects,
            "bytes": self.total_bytes,
            "jobs": self.jobs,
            "final_jobs": self.final_jobs,
            "job_versions": self.job_versions,
            "job_lines": self.job_lines,
            "activity_events": self.activity_events,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "by_kind": dict(self.by_kind),
            "by_stream_type": dict(self.by_stream_type),
            "by_reason": dict(self.by_reason),
        }


def expected_archive(objects: Iterable[SynthObject]) -> ExpectedArchive:
    """What the archive must hold for these objects; consumes them one at a time."""
    expectation = Expectation()
    for obj in objects:
        expectation.add(obj)
    return expectation.build()


class Expectation:
    """Folds truths into an ExpectedArchive without keeping the objects' bodies."""

    def __init__(self) -> None:
        self.finals: dict[str, Truth] = {}
        self.final_objects = 0
        self.activity = 0
        self.activity_by_day: Counter[dt.date] = Counter()
        self.quarantine: dict[str, str] = {}
        self.skipped: set[str] = set()
        self.kinds: Counter[str] = Counter({KIND_JOB: 0, KIND_ACTIVITY: 0, KIND_QUARANTINE: 0, KIND_SKIP: 0})
        self.stream_types: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.secrets: set[str] = set()

    def add(self, obj: SynthObject) -> None:
        truth = obj.truth
        self.secrets.update(truth.secrets)
        self.kinds[truth.kind] += 1
        if truth.stream_type:
            self.stream_types[truth.stream_type] += 1
        if truth.kind == KIND_JOB and truth.is_final and truth.job_id is not None:
            self.final_objects += 1
            self.finals[truth.job_id] = truth
        elif truth.kind == KIND_ACTIVITY:
            self.activity += 1
            if truth.day is not None:
                self.activity_by_day[truth.day] += 1
        elif truth.kind == KIND_QUARANTINE and truth.reason is not None:
            self.quarantine[obj.key] = truth.reason
            self.reasons[truth.reason] += 1
        elif truth.kind == KIND_SKIP:
            self.skipped.add(obj.key)

    def build(self) -> ExpectedArchive:
        finals = self.finals.values()
        by_day: Counter[dt.date] = Counter(t.day for t in finals if t.day is not None)
        return ExpectedArchive(
            jobs=frozenset((t.job_id or "", t.status or "", t.line_count, t.lines_truncated) for t in finals),
            finals=dict(self.finals),
            jobs_by_day=dict(sorted(by_day.items())),
            job_lines=sum(t.line_count or 0 for t in finals),
            masked_lines=sum(t.masked_lines or 0 for t in finals),
            timed_lines=sum(t.timed_lines or 0 for t in finals),
            activity=self.activity,
            activity_by_day=dict(sorted(self.activity_by_day.items())),
            quarantine=dict(self.quarantine),
            skipped=frozenset(self.skipped),
            secrets=frozenset(self.secrets),
        )

    def summary(self, objects: int, total_bytes: int) -> CorpusSummary:
        """The counts of a written corpus of `objects` objects and `total_bytes` bytes."""
        expected = self.build()
        return CorpusSummary(
            objects=objects,
            total_bytes=total_bytes,
            jobs=len(expected.finals),
            final_jobs=self.final_objects,
            job_versions=self.kinds[KIND_JOB],
            job_lines=expected.job_lines,
            activity_events=expected.activity,
            quarantined=len(expected.quarantine),
            skipped=len(expected.skipped),
            by_kind=dict(sorted(self.kinds.items())),
            by_stream_type=dict(sorted(self.stream_types.items())),
            by_reason=dict(sorted(self.reasons.items())),
            expected=expected,
        )
