"""The deployment's one Iceberg publisher: which events it takes, and the publish it runs.

Unit workers (the SQS, nightly, backfill and activity functions) commit only to the
ledger; they know the archive has tables (`ARCHIVER_CATALOG` is set for every function,
so they leave superseded files to the publisher) but are given no catalog to commit to.
The publisher function alone (reserved concurrency 1) brings the tables to the ledger's
state: on a short schedule for the SQS path, and as a state after the backfill's
Distributed Map. Its catalog is configured the pyiceberg way in its environment
(`PYICEBERG_CATALOG__GLUE__TYPE=glue`); boto3 takes the region and credentials from
Lambda's environment, and pyiceberg finds no `.pyiceberg.yaml` (none is shipped) and
writes nothing outside the archive.

Its event is the scheduler's `{"source": "archiver.publish", "time": ...}` or the state
machine's `{"source": "archiver.backfill"}`; any other field is refused, so a caller that
means something else (a rebuild, say: `archiver publish DEST --rebuild` from an operator's
machine) fails at once instead of being half understood.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archiver.aws.runtime import Runtime
from archiver.engine import api
from archiver.errors import ConfigError

FIELDS = frozenset({"source", "time"})
EXAMPLES = 10
"""Failures named in an answer (the rest are counted)."""


def parse_publish(event: Mapping[str, Any]) -> None:
    """Check a publish event: a JSON object with no field but `source` and `time` (ConfigError)."""
    if not isinstance(event, Mapping):
        raise ConfigError("a publish event must be a JSON object")
    unknown = sorted(set(event) - FIELDS)
    if unknown:
        raise ConfigError(
            f"publish: unknown field(s) {', '.join(unknown)} (a rebuild is `archiver publish DEST --rebuild`)"
        )


def run_publish(runtime: Runtime) -> api.PublishReport:
    """Publish the deployment's archive through its catalog; ConfigError when none is named."""
    settings = runtime.deployment.settings
    if settings.catalog is None:
        raise ConfigError(
            "the publisher needs ARCHIVER_CATALOG (a catalog configured the pyiceberg way, "
            "e.g. PYICEBERG_CATALOG__GLUE__TYPE=glue): without one an S3 archive has no tables"
        )
    return runtime.run(lambda source, dest: api.publish_store(dest, settings))


def publish_summary(report: api.PublishReport) -> dict[str, Any]:
    """The publish report as an answer: failures cut to a few examples and counted."""
    summary = report.as_dict()
    failures = report.failures
    summary["failures"] = failures[:EXAMPLES]
    summary["failure_count"] = len(failures)
    return summary


def files_changed(report: api.PublishReport) -> tuple[int, int]:
    """Data files the publish added to its tables, and removed from them."""
    changes = [change.as_dict() for change in report.tables.values()]
    return (
        sum(int(str(change["files_added"])) for change in changes),
        sum(int(str(change["files_removed"])) for change in changes),
    )
