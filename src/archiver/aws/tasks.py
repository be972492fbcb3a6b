"""Step Functions tasks of the backfill: plan -> compact each unit (Distributed Map) -> verify.

A task's input is `{"action": "plan" | "compact" | "verify", ...}`; `parse_task`
checks it strictly (an unknown field is an error, so a state machine that sends
something else fails at once instead of being half understood). Outputs stay far below
Step Functions' 256 KB state limit: lists of keys are cut to a few examples and counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from archiver.aws.engine_adapter import write_manifest
from archiver.aws.runtime import Runtime
from archiver.config import parse_date
from archiver.engine import api
from archiver.engine.api import UnitScope
from archiver.errors import ArchiverError, ConfigError

ACTIONS = ("plan", "compact", "verify")
FIELDS: dict[str, frozenset[str]] = {
    "plan": frozenset({"action", "since", "until"}),
    "compact": frozenset({"action", "unit"}),
    "verify": frozenset({"action", "since", "until"}),
}
EXAMPLES = 10
"""Keys named in a summary per kind of problem (the rest are counted)."""


class UnitIncompleteError(ArchiverError):
    """Some objects of the unit could not be read after retries; the state machine retries the unit."""

    retryable = True


class ArchiveGapError(ArchiverError):
    """`verify` found source objects missing from the archive, files its ledgers name missing or damaged,
    or a unit whose ledger it could not read."""


@dataclass(frozen=True, slots=True)
class TaskRequest:
    action: str
    unit: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None


def parse_task(event: Mapping[str, Any]) -> TaskRequest:
    """The task an input asks for; ConfigError for an unknown action, field or value."""
    if not isinstance(event, Mapping):
        raise ConfigError("a task input must be a JSON object")
    action = event.get("action")
    if action not in ACTIONS:
        raise ConfigError(f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
    unknown = sorted(set(event) - FIELDS[action])
    if unknown:
        raise ConfigError(f"{action}: unknown field(s) {', '.join(unknown)}")
    if action == "compact":
        unit = event.get("unit")
        if not isinstance(unit, str) or not unit:
            raise ConfigError("compact: `unit` must be a unit name from the plan")
        UnitScope(unit=unit)  # raises ConfigError for a malformed name
        return TaskRequest(action, unit=unit)
    return TaskRequest(action, since=_date(event, "since"), until=_date(event, "until"))


def _date(event: Mapping[str, Any], name: str) -> dt.date | None:
    value = event.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"`{name}` must be a YYYY-MM-DD string or null")
    return parse_date(value)


def run_task(request: TaskRequest, runtime: Runtime, *, run_id: str, now: dt.datetime) -> dict[str, Any]:
    """Carry out one task and return its (small) output."""
    deployment = runtime.deployment
    settings = deployment.settings.with_window(request.since, request.until)
    if request.action == "plan":
        name = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{run_id}"

        async def plan(source: Any, dest: Any) -> tuple[str, int]:
            units = await api.plan(source, dest, settings)
            return await write_manifest(dest, units, name), len(units)

        key, count = runtime.run(plan)
        return {
            "manifest": {"bucket": deployment.dest.bucket, "key": deployment.dest.prefix + key},
            "units": count,
            "window": _window(request),
        }
    if request.action == "compact":
        scope = UnitScope(unit=request.unit)
        report = runtime.run(lambda source, dest: api.compact(source, dest, settings, scope=scope))
        summary = compact_summary(request.unit or "", report)
        if report.failures:
            first = report.failures[0]
            raise UnitIncompleteError(
                f"unit {request.unit}: {len(report.failures)} object(s) could not be read; "
                f"first: {first.get('key')} ({first.get('kind')})"
            )
        return summary
    verified = runtime.run(lambda source, dest: api.verify(source, dest, settings))
    summary = verify_summary(verified)
    if not verified.ok:
        counts = summary["counts"]
        raise ArchiveGapError(
            f"the archive has gaps: {counts['not_archived']} not archived, {counts['stale']} stale, "
            f"{counts['missing_files']} missing files, {counts['damaged_files']} damaged files, "
            f"{counts['orphan_files']} orphan files, {len(verified.failures)} units unreadable; "
            f"first: {_first_problem(summary)}"
        )
    return summary


def compact_summary(unit: str, report: api.RunReport) -> dict[str, Any]:
    full = report.as_dict()
    keep = (
        "objects_listed",
        "objects_archived",
        "objects_skipped",
        "objects_quarantined",
        "objects_failed",
        "rows",
        "files_written",
        "bytes_read",
        "bytes_written",
        "units_committed",
        "commit_conflicts",
        "seconds",
    )
    summary: dict[str, Any] = {"unit": unit, **{name: full[name] for name in keep}}
    summary["failures"] = [
        {"key": failure.get("key"), "kind": failure.get("kind"), "error": str(failure.get("error", ""))[:300]}
        for failure in report.failures[:EXAMPLES]
    ]
    return summary


def verify_summary(report: api.VerifyReport) -> dict[str, Any]:
    full = report.as_dict()
    summary = {name: value for name, value in full.items() if not isinstance(value, list)}
    for name in (*report.PROBLEMS, "failures"):
        problems = full[name]
        assert isinstance(problems, list)
        summary[name] = problems[:EXAMPLES]
    return summary


def _first_problem(summary: Mapping[str, Any]) -> str:
    if summary["failures"]:
        return f"{summary['failures'][0]['error']} (failures)"
    for name in api.VerifyReport.PROBLEMS:
        if summary[name]:
            return f"{summary[name][0]} ({name})"
    return "none"


def _window(request: TaskRequest) -> dict[str, str | None]:
    return {
        "since": request.since.isoformat() if request.since else None,
        "until": request.until.isoformat() if request.until else None,
    }
