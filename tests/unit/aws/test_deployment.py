"""The deployment's environment: required locations, the no-loop rule, verify days."""

from __future__ import annotations

import pytest

from archiver.aws.deployment import WORKATO_RETRY_DAYS, deployment_from_env
from archiver.errors import ConfigError

BASE = {"ARCHIVER_SOURCE": "s3://logs/workato/", "ARCHIVER_DEST": "s3://archive/parquet"}


def test_a_complete_environment() -> None:
    deployment = deployment_from_env({**BASE, "ARCHIVER_LOOKBACK_DAYS": "3", "ARCHIVER_CONCURRENCY": "16"})
    assert deployment.source.url == "s3://logs/workato/"
    assert deployment.dest.url == "s3://archive/parquet/"
    assert deployment.settings.concurrency == 16
    assert deployment.verify_after_days == 3 + WORKATO_RETRY_DAYS
    assert deployment.verify_span_days == 3


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ARCHIVER_DEST": "s3://archive/"}, "ARCHIVER_SOURCE is not set"),
        ({"ARCHIVER_SOURCE": "s3://logs/"}, "ARCHIVER_DEST is not set"),
        ({**BASE, "ARCHIVER_SOURCE": "/tmp/logs"}, "ARCHIVER_SOURCE: not an S3 URL"),
        ({**BASE, "ARCHIVER_DEST": "s3://Bad_Bucket/"}, "ARCHIVER_DEST: invalid S3 bucket name"),
        ({**BASE, "ARCHIVER_CONCURRENCY": "many"}, "ARCHIVER_CONCURRENCY must be a whole number"),
        ({**BASE, "ARCHIVER_VERIFY_SPAN_DAYS": "0"}, "ARCHIVER_VERIFY_SPAN_DAYS must be at least 1"),
        ({**BASE, "ARCHIVER_VERIFY_AFTER_DAYS": "-1"}, "must not be negative"),
    ],
)
def test_missing_or_invalid_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        deployment_from_env(environ)


@pytest.mark.parametrize(
    ("source", "dest"),
    [
        ("s3://logs/", "s3://logs/archive/"),  # the archive under the watched prefix: a notification loop
        ("s3://logs/workato/", "s3://logs/workato/archive/"),
        ("s3://logs/workato/archive/", "s3://logs/workato/"),  # the archive holding the source
    ],
)
def test_an_archive_overlapping_the_watched_prefix_is_refused(source: str, dest: str) -> None:
    with pytest.raises(ConfigError, match="never be written under the watched prefix"):
        deployment_from_env({"ARCHIVER_SOURCE": source, "ARCHIVER_DEST": dest})


def test_same_bucket_beside_the_watched_prefix_is_fine() -> None:
    deployment = deployment_from_env(
        {"ARCHIVER_SOURCE": "s3://logs/workato/", "ARCHIVER_DEST": "s3://logs/archive/"}
    )
    assert deployment.dest.prefix == "archive/"
