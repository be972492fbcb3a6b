"""Lambda entry points: `sqs_handler`, `schedule_handler`, `task_handler`, `activity_handler`,
`publish_handler`.

Each parses its event, runs the engine through the cached runtime of this execution
environment, and turns the result into its answer. Logs are Powertools' structured
JSON (counts, keys, error kinds: never object contents, never credentials); metrics go
to CloudWatch in the embedded metric format, namespace `Archiver`. Configuration is
the environment (`ARCHIVER_SOURCE`, `ARCHIVER_DEST`, `ARCHIVER_*`; `WORKATO_*` for the
activity puller, see `archiver.aws.activity`), checked on every invocation: a missing
or invalid variable fails the invocation with a ConfigError that names it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from archiver.aws.activity import run_scheduled_pull
from archiver.aws.publisher import files_changed, parse_publish, publish_summary, run_publish
from archiver.aws.runtime import current_runtime
from archiver.aws.schedule import run_schedule, scheduled_time
from archiver.aws.sqs_batch import handle_batch
from archiver.aws.tasks import parse_task, run_task
from archiver.errors import ArchiverError

METRICS_NAMESPACE = "Archiver"

logger = Logger(service="archiver")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="archiver")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def sqs_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch of S3 notifications -> `{"batchItemFailures": [...]}` naming the failed messages."""
    result = handle_batch(event, context, current_runtime())
    plan, outcome = result.plan, result.outcome
    report = outcome.report.as_dict() if outcome is not None and outcome.report is not None else {}
    metrics.add_metric("Messages", MetricUnit.Count, len(event.get("Records") or []))
    metrics.add_metric("MessagesFailed", MetricUnit.Count, len(result.failed_messages))
    metrics.add_metric("UnknownMessages", MetricUnit.Count, len(plan.unknown))
    _report_metrics(report)
    logger.info(
        "batch archived",
        extra={
            "keys": len(plan.all_keys()),
            "ignored": dict(plan.ignored),
            "failed_messages": result.failed_messages,
            "report": _without_failures(report),
        },
    )
    return dict(result.response)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def schedule_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Nightly: compact with the lookback, then verify the final days, within the time left."""
    now = scheduled_time(event, dt.datetime.now(dt.UTC))
    result = run_schedule(
        current_runtime(), now=now, time_left=lambda: context.get_remaining_time_in_millis() / 1000
    )
    compact = result.get("compact", {})
    _report_metrics(compact)
    if result.get("units_left") is not None:
        metrics.add_metric("UnitsLeft", MetricUnit.Count, result["units_left"])
    verify = result.get("verify", {})
    if "counts" in verify:
        metrics.add_metric("VerifyGaps", MetricUnit.Count, sum(verify["counts"].values()))
    logger.info("schedule finished", extra={"result": result})
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def task_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A Step Functions task: plan, compact one unit, or verify (raises on a gap)."""
    request = parse_task(event)
    request_id = str(getattr(context, "aws_request_id", "") or uuid.uuid4().hex)
    output = run_task(
        request, current_runtime(), run_id=request_id.split("-", 1)[0], now=dt.datetime.now(dt.UTC)
    )
    metrics.add_metric("Tasks", MetricUnit.Count, 1)
    if request.action == "compact":
        _report_metrics(output)
    logger.info("task finished", extra={"action": request.action, "output": output})
    return output


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def activity_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled: pull Workato's activity audit log API into the archive, up to the event's time.

    Raises on a refused token (401/403), an unreachable API or archive, or bad settings,
    so the invocation fails visibly; a run out of time returns `complete: false` and the
    next invocation continues from the checkpoint.
    """
    wall = dt.datetime.now(dt.UTC)
    now = min(scheduled_time(event, wall), wall)
    try:
        summary = run_scheduled_pull(now=now, time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    except ArchiverError as error:
        logger.error("activity pull failed", extra={"error": type(error).__name__, "detail": str(error)})
        raise
    metrics.add_metric("ActivityEventsPulled", MetricUnit.Count, summary["events_pulled"])
    metrics.add_metric("ActivityEventsNew", MetricUnit.Count, summary["events_new"])
    metrics.add_metric("ActivityApiRetries", MetricUnit.Count, summary["retries"])
    metrics.add_metric("ActivityUnknownEvents", MetricUnit.Count, summary["unknown_events"])
    metrics.add_metric("ActivityIncomplete", MetricUnit.Count, 0 if summary["complete"] else 1)
    logger.info("activity pulled", extra={"summary": summary})
    return summary


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def publish_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled, and after a backfill's map: bring the Iceberg tables to the ledger's state.

    Raises when the catalog or the archive cannot be reached, or on bad settings (the
    invocation fails visibly; the next scheduled one tries again); a table that kept losing
    to rival commits is in the answer's `failures`. Either way `PublishFailures` counts it,
    and `PublishesSucceeded` is 1 only for a publish that brought every table up to date.
    """
    parse_publish(event)
    try:
        report = run_publish(current_runtime())
    except ArchiverError as error:
        metrics.add_metric("PublishFailures", MetricUnit.Count, 1)
        metrics.add_metric("PublishesSucceeded", MetricUnit.Count, 0)
        logger.error("publish failed", extra={"error": type(error).__name__, "detail": str(error)})
        raise
    summary = publish_summary(report)
    failed = len(report.failures)
    metrics.add_metric("PublishFailures", MetricUnit.Count, failed)
    metrics.add_metric("PublishesSucceeded", MetricUnit.Count, 0 if failed else 1)
    metrics.add_metric("PublishCommits", MetricUnit.Count, report.commits)
    metrics.add_metric("PublishCommitConflicts", MetricUnit.Count, report.commit_conflicts)
    metrics.add_metric("PublishSeconds", MetricUnit.Seconds, report.seconds)
    added, removed = files_changed(report)
    metrics.add_metric("PublishFilesAdded", MetricUnit.Count, added)
    metrics.add_metric("PublishFilesRemoved", MetricUnit.Count, removed)
    (logger.warning if failed else logger.info)("publish finished", extra={"summary": summary})
    return summary


def _report_metrics(report: Mapping[str, Any]) -> None:
    for name, metric in (
        ("objects_archived", "ObjectsArchived"),
        ("objects_quarantined", "ObjectsQuarantined"),
        ("objects_failed", "ObjectsFailed"),
        ("files_written", "FilesWritten"),
    ):
        if name in report:
            metrics.add_metric(metric, MetricUnit.Count, report[name])
    if "bytes_read" in report:
        metrics.add_metric("BytesRead", MetricUnit.Bytes, report["bytes_read"])
    for role, use in (report.get("by_store") or {}).items():
        for kind in PRICED_REQUESTS.get(role, ()):
            metrics.add_metric(
                f"{STORE_METRIC[role]}{kind.capitalize()}Requests", MetricUnit.Count, use[kind]
            )


STORE_METRIC = {"source": "Source", "dest": "Archive", "source_and_dest": "SourceAndArchive"}
PRICED_REQUESTS = {
    "source": ("list", "get", "head"),
    "dest": ("list", "get", "put"),
    "source_and_dest": ("list", "get", "put", "head"),
}
"""The requests S3 charges for (DELETE is free), by store: what the dashboard's cost widget sums."""


def _without_failures(report: Mapping[str, Any]) -> dict[str, Any]:
    """The run report for a log line: failures are counted, the first few named."""
    trimmed = dict(report)
    failures = trimmed.pop("failures", [])
    trimmed["first_failures"] = [failure.get("key") for failure in failures[:5]]
    return trimmed
