"""The handlers' CloudWatch metrics (embedded metric format) say what a run cost, request by request."""

from __future__ import annotations

from typing import Any

from archiver.aws import handlers


def emitted(report: dict[str, Any]) -> dict[str, float]:
    """The metrics one report becomes, by name (values summed as CloudWatch would)."""
    handlers.metrics.clear_metrics()
    try:
        handlers._report_metrics(report)
        document = handlers.metrics.serialize_metric_set()
    finally:
        handlers.metrics.clear_metrics()
    names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    values = {name: document[name] for name in names}
    return {name: sum(value) if isinstance(value, list) else value for name, value in values.items()}


def test_a_run_reports_its_priced_requests_by_store_and_kind() -> None:
    # GIVEN a run report whose requests are split by store
    report = {
        "objects_archived": 98,
        "by_store": {
            "source": {
                "list": 0,
                "get": 100,
                "put": 0,
                "delete": 0,
                "head": 0,
                "bytes_read": 5,
                "bytes_written": 0,
            },
            "dest": {
                "list": 2,
                "get": 7,
                "put": 9,
                "delete": 3,
                "head": 0,
                "bytes_read": 1,
                "bytes_written": 2,
            },
        },
    }
    # WHEN the handler turns it into metrics
    metrics = emitted(report)
    # THEN every request S3 charges for is a metric of its own (DELETE is free: not one)
    assert metrics["SourceGetRequests"] == 100 and metrics["SourceHeadRequests"] == 0
    assert metrics["SourceListRequests"] == 0
    assert (metrics["ArchiveListRequests"], metrics["ArchiveGetRequests"], metrics["ArchivePutRequests"]) == (
        2,
        7,
        9,
    )
    assert metrics["ObjectsArchived"] == 98
    assert not any("Delete" in name for name in metrics)
