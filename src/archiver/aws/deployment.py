"""A Lambda deployment's configuration: where to read, where to write, and the run settings.

The handlers are configured by the environment alone: `ARCHIVER_SOURCE` and
`ARCHIVER_DEST` (`s3://bucket/prefix/`) plus the `ARCHIVER_*` settings every entry
point shares (`config.settings_from_env`). Two settings only the scheduled handler
uses are read here too. A missing or invalid value is a `ConfigError` that names the
variable, raised before anything is read or written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from archiver.config import Settings, settings_from_env
from archiver.engine import api
from archiver.errors import ConfigError
from archiver.storage.location import parse_s3_url

WORKATO_RETRY_DAYS = 7
"""Workato retries a failed delivery for up to seven days: a day is final only after that."""


@dataclass(frozen=True, slots=True)
class Location:
    """An S3 bucket and a prefix ('' or ending with '/')."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class Deployment:
    """Everything a handler needs to know about where it runs."""

    source: Location
    dest: Location
    settings: Settings
    verify_after_days: int
    verify_span_days: int


def deployment_from_env(environ: Mapping[str, str] | None = None) -> Deployment:
    """Read and check the deployment's environment (ConfigError names what is wrong)."""
    env = os.environ if environ is None else environ
    source = location_from_env(env, "ARCHIVER_SOURCE")
    dest = location_from_env(env, "ARCHIVER_DEST")
    check_no_loop(source, dest)
    settings = settings_from_env(env)
    after = _days(env, "ARCHIVER_VERIFY_AFTER_DAYS", settings.lookback_days + WORKATO_RETRY_DAYS)
    span = _days(env, "ARCHIVER_VERIFY_SPAN_DAYS", 3)
    if span < 1:
        raise ConfigError("ARCHIVER_VERIFY_SPAN_DAYS must be at least 1")
    return Deployment(source, dest, settings, verify_after_days=after, verify_span_days=span)


def check_no_loop(source: Location, dest: Location) -> None:
    """Refuse an archive under the watched prefix (or holding it): a notification loop."""
    # The archive writes JSON of its own (ledger heads, intents, checkpoints); under the
    # watched prefix every such write would notify the queue and loop forever.
    if api.is_within(dest.url, source.url) or api.is_within(source.url, dest.url):
        raise ConfigError(
            f"ARCHIVER_DEST {dest.url} and ARCHIVER_SOURCE {source.url} overlap: "
            "the archive must never be written under the watched prefix (nor contain it)"
        )


def location_from_env(env: Mapping[str, str], variable: str) -> Location:
    """The `s3://bucket/prefix/` in `variable` (ConfigError names the variable when missing or invalid)."""
    url = env.get(variable, "").strip()
    if not url:
        raise ConfigError(f"{variable} is not set (expected s3://bucket/prefix/)")
    try:
        bucket, prefix = parse_s3_url(url)
    except ConfigError as error:
        raise ConfigError(f"{variable}: {error}") from None
    return Location(bucket, prefix)


def _days(env: Mapping[str, str], variable: str, default: int) -> int:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{variable} must be a whole number of days, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{variable} must not be negative, got {raw!r}")
    return value
