"""Settings: one frozen dataclass, and the only place that reads the environment."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from archiver.errors import ConfigError

if TYPE_CHECKING:
    from archiver.formats.policy import Policy

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """How a run behaves. Every field has a default; ARCHIVER_* variables override them."""

    since: dt.date | None = None
    until: dt.date | None = None
    concurrency: int = 64
    unit_concurrency: int = 8
    max_bytes_in_flight: int = 48 * MIB
    max_buffered_bytes: int = 48 * MIB
    max_object_bytes: int = 256 * MIB
    target_file_bytes: int = 256 * MIB
    row_group_rows: int = 50_000
    lookback_days: int = 7
    max_small_files: int = 8
    compression: str = "zstd"
    compression_level: int = 3
    payload_compression_level: int = 11
    progress: bool = False
    s3_max_attempts: int = 8
    s3_retry_mode: str = "standard"
    unit_max_objects: int = 20_000
    retire_grace_seconds: int = 0
    """Without a catalog, how long a superseded data file stays for queries already reading it
    (a glob reader sees its rows twice meanwhile). With one, the snapshot retention governs."""
    parse_workers: int = 0
    time_reserve_seconds: int = 90
    listing: str = "auto"
    listing_max_keys: int = 200_000
    # Workato's activity audit log API (`pull-activity`).
    api_requests_per_minute: int = 60
    api_overlap_minutes: int = 60
    api_max_attempts: int = 8
    api_timeout_seconds: int = 60
    # The redaction policy: where its file is (ARCHIVER_POLICY), and once loaded (engine.api.with_policy)
    # the policy itself; None means the default policy (secret-named payload keys redacted).
    policy_location: str = ""
    policy: Policy | None = field(default=None, repr=False)
    # Iceberg tables (`publish`): a pyiceberg catalog's name (None: the local DEST's embedded
    # one, and no tables for an S3 DEST), the namespace, and how long snapshots are kept.
    catalog: str | None = None
    catalog_namespace: str = "archiver"
    snapshot_retention_seconds: int = 14 * 86_400

    def with_window(self, since: dt.date | None, until: dt.date | None) -> Settings:
        if since and until and since > until:
            raise ConfigError(f"--since {since} is after --until {until}")
        return replace(self, since=since, until=until)


_INT_VARIABLES = {
    "ARCHIVER_CONCURRENCY": "concurrency",
    "ARCHIVER_UNIT_CONCURRENCY": "unit_concurrency",
    "ARCHIVER_MAX_BYTES_IN_FLIGHT": "max_bytes_in_flight",
    "ARCHIVER_MAX_BUFFERED_BYTES": "max_buffered_bytes",
    "ARCHIVER_MAX_OBJECT_BYTES": "max_object_bytes",
    "ARCHIVER_TARGET_FILE_BYTES": "target_file_bytes",
    "ARCHIVER_ROW_GROUP_ROWS": "row_group_rows",
    "ARCHIVER_LOOKBACK_DAYS": "lookback_days",
    "ARCHIVER_MAX_SMALL_FILES": "max_small_files",
    "ARCHIVER_COMPRESSION_LEVEL": "compression_level",
    "ARCHIVER_PAYLOAD_COMPRESSION_LEVEL": "payload_compression_level",
    "ARCHIVER_UNIT_MAX_OBJECTS": "unit_max_objects",
    "ARCHIVER_RETIRE_GRACE_SECONDS": "retire_grace_seconds",
    "ARCHIVER_PARSE_WORKERS": "parse_workers",
    "ARCHIVER_TIME_RESERVE_SECONDS": "time_reserve_seconds",
    "ARCHIVER_LISTING_MAX_KEYS": "listing_max_keys",
    "ARCHIVER_API_REQUESTS_PER_MINUTE": "api_requests_per_minute",
    "ARCHIVER_API_OVERLAP_MINUTES": "api_overlap_minutes",
    "ARCHIVER_API_MAX_ATTEMPTS": "api_max_attempts",
    "ARCHIVER_API_TIMEOUT_SECONDS": "api_timeout_seconds",
}
# Settings where 0 makes sense (no lookback, no grace, no overlap, auto); the others must be at least 1.
_MAY_BE_ZERO = frozenset(
    {"lookback_days", "retire_grace_seconds", "parse_workers", "time_reserve_seconds", "api_overlap_minutes"}
)

LISTING_CHOICES = ("auto", "folders", "prefix", "flat")
"""How a workspace's `jobs/` folder is listed (ARCHIVER_LISTING); see `archiver.engine.scans`."""

_ZSTD_LEVELS = frozenset({"compression_level", "payload_compression_level"})
ZSTD_MAX_LEVEL = 22


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults overridden by ARCHIVER_* environment variables."""
    env = os.environ if environ is None else environ
    values: dict[str, int] = {}
    for variable, name in _INT_VARIABLES.items():
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[name] = int(raw)
        except ValueError as error:
            raise ConfigError(f"{variable} must be a whole number, got {raw!r}") from error
        if values[name] < (0 if name in _MAY_BE_ZERO else 1):
            raise ConfigError(f"{variable} must be positive, got {raw!r}")
        if name in _ZSTD_LEVELS and values[name] > ZSTD_MAX_LEVEL:
            raise ConfigError(f"{variable} must be a zstd level from 1 to {ZSTD_MAX_LEVEL}, got {raw!r}")
    settings = replace(Settings(), **values)  # type: ignore[arg-type]
    settings = replace(settings, policy_location=env.get("ARCHIVER_POLICY", "").strip())
    settings = _catalog_settings(env, settings)
    listing = env.get("ARCHIVER_LISTING")
    if listing:
        if listing not in LISTING_CHOICES:
            choices = ", ".join(LISTING_CHOICES)
            raise ConfigError(f"ARCHIVER_LISTING must be one of {choices}, got {listing!r}")
        settings = replace(settings, listing=listing)
    # The standard AWS variables, so the archiver's defaults never override what a user set.
    attempts = env.get("AWS_MAX_ATTEMPTS")
    if attempts:
        try:
            settings = replace(settings, s3_max_attempts=max(1, int(attempts)))
        except ValueError as error:
            raise ConfigError(f"AWS_MAX_ATTEMPTS must be a whole number, got {attempts!r}") from error
    mode = env.get("AWS_RETRY_MODE")
    if mode:
        if mode not in ("legacy", "standard", "adaptive"):
            raise ConfigError(f"AWS_RETRY_MODE must be legacy, standard or adaptive, got {mode!r}")
        settings = replace(settings, s3_retry_mode=mode)
    return settings


_DURATION_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(variable: str, text: str) -> int:
    """Seconds from `14d`, `36h`, `90m`, `3600s` or a bare number of seconds."""
    raw = text.strip().lower()
    unit = _DURATION_UNITS.get(raw[-1:], 0) if raw else 0
    digits = raw[:-1] if unit else raw
    if not digits.isdigit() or int(digits) < 1:
        raise ConfigError(f"{variable} must be a duration such as 14d, 36h or 3600 (seconds), got {text!r}")
    return int(digits) * (unit or 1)


def _catalog_settings(env: Mapping[str, str], settings: Settings) -> Settings:
    """ARCHIVER_CATALOG (a catalog configured the pyiceberg way), its namespace, the snapshot retention."""
    catalog = env.get("ARCHIVER_CATALOG", "").strip() or None
    namespace = env.get("ARCHIVER_CATALOG_NAMESPACE", "").strip() or settings.catalog_namespace
    if not namespace.replace("_", "").isalnum():
        raise ConfigError(f"ARCHIVER_CATALOG_NAMESPACE must be letters, digits and _, got {namespace!r}")
    retention = env.get("ARCHIVER_SNAPSHOT_RETENTION", "").strip()
    seconds = parse_duration("ARCHIVER_SNAPSHOT_RETENTION", retention) if retention else None
    return replace(
        settings,
        catalog=catalog,
        catalog_namespace=namespace,
        snapshot_retention_seconds=seconds or settings.snapshot_retention_seconds,
    )


def file_io_properties(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """pyiceberg FileIO properties from the standard AWS configuration, for catalogs that name none.

    `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) points metadata writes at another endpoint such
    as a moto server; the region comes from `AWS_REGION` / `AWS_DEFAULT_REGION`. Credentials are
    left to the AWS SDK's own chain (environment, profile, instance role).
    """
    env = os.environ if environ is None else environ
    properties: dict[str, str] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        properties["s3.endpoint"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        properties["s3.region"] = region
    return properties


def api_token_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The Workato API token from WORKATO_API_TOKEN (kept out of Settings so no repr can show it)."""
    env = os.environ if environ is None else environ
    token = env.get("WORKATO_API_TOKEN", "").strip()
    if not token:
        raise ConfigError("WORKATO_API_TOKEN is not set: export the API client's token to pull activity")
    return token


def policy_key_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The key of the policy's `hash` rules (ARCHIVER_POLICY_KEY), kept out of Settings; None if unset."""
    env = os.environ if environ is None else environ
    key = env.get("ARCHIVER_POLICY_KEY", "").strip()
    return key.encode() if key else None


def parse_date(text: str) -> dt.date:
    """YYYY-MM-DD from the command line."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise ConfigError(f"not a date (YYYY-MM-DD): {text!r}") from error
