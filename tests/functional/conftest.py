"""Fixtures for tests against a real S3 API: a moto server on loopback, fresh buckets, AWS settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket, running_moto_server

MOTO_PAGE_SIZE = 7
"""Keys per ListObjects page on the test server: small, so every listing test crosses pages."""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session ("http://127.0.0.1:PORT"), listing MOTO_PAGE_SIZE keys a page."""
    with running_moto_server(max_keys=MOTO_PAGE_SIZE) as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    """A new empty bucket on the moto server, named uniquely so tests never share state."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    create_bucket(moto_endpoint, bucket)
    return bucket


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    """Standard AWS settings pointing at moto, for code that reads the normal AWS configuration.

    A developer's own profile or config files must not leak into the tests, so they
    are pointed at nothing. Returns the endpoint.
    """
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", MOTO_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MOTO_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", MOTO_CREDENTIALS["region_name"])
    monkeypatch.setenv("AWS_REGION", MOTO_CREDENTIALS["region_name"])
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_endpoint
