"""The scheduled pull of Workato's activity audit log API, for `activity_handler`.

It does what `archiver pull-activity DEST --base-url URL` does (the same puller,
`archiver.sources.activity_pull`), configured by the environment:

- `ARCHIVER_DEST` (`s3://bucket/prefix/`): the archive. `ARCHIVER_SOURCE` is not
  needed; when it is set, the archive must not overlap it (no notification loop).
- `WORKATO_BASE_URL`: the data centre's API, `https://...` (plain `http://` only to a
  loopback address, for local tests: the token travels with every request).
- `WORKATO_MANAGED_USERS` (optional): comma-separated customer workspace ids, or `all`.
- The token: `WORKATO_API_TOKEN_SECRET` (a Secrets Manager secret's ARN or name) or
  `WORKATO_API_TOKEN_PARAMETER` (an SSM SecureString parameter's name), exactly one.
  The secret string is the token itself, or a JSON object with a `token` key.
- The `ARCHIVER_*` settings of the command line (`ARCHIVER_API_REQUESTS_PER_MINUTE`, ...).

The token is read through Powertools' Parameters utility once per execution
environment and kept in its cache; after the API refuses it (401/403) the next
invocation reads it again, so a rotated token is picked up without a cold start.
It never reaches a log line, an error message or the summary.

The run is time-boxed: a day-chunk starts only while the time left exceeds
`ARCHIVER_TIME_RESERVE_SECONDS` plus the longest chunk seen so far. What is not
pulled is left to the next invocation, which starts from the checkpoint.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from archiver.aws.deployment import Location, check_no_loop, location_from_env
from archiver.aws.policy import with_policy_from_env
from archiver.aws.runtime import quiet_runner
from archiver.aws.secrets import without_response_bodies_in_debug_logs
from archiver.config import Settings, settings_from_env
from archiver.errors import ApiAuthError, ConfigError
from archiver.sources.activity_pull import PullReport, parse_managed_users, pull_activity
from archiver.sources.workato.client import AUTH_HINT, normalise_base_url

BASE_URL_VARIABLE = "WORKATO_BASE_URL"
MANAGED_USERS_VARIABLE = "WORKATO_MANAGED_USERS"
SECRET_VARIABLE = "WORKATO_API_TOKEN_SECRET"
PARAMETER_VARIABLE = "WORKATO_API_TOKEN_PARAMETER"
TOKEN_MAX_AGE_S = 366 * 24 * 3600
"""Powertools' cache keeps the token this long: in practice, the execution environment's life."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
UNKNOWN_NAMES_IN_SUMMARY = 20


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where the API token is kept: a Secrets Manager secret or an SSM SecureString parameter."""

    kind: Literal["secret", "parameter"]
    name: str

    @property
    def variable(self) -> str:
        return SECRET_VARIABLE if self.kind == "secret" else PARAMETER_VARIABLE

    def __str__(self) -> str:
        where = "Secrets Manager secret" if self.kind == "secret" else "SSM parameter"
        return f"{where} {self.name} ({self.variable})"


@dataclass(frozen=True, slots=True)
class ActivityConfig:
    """Everything the scheduled pull needs but the token."""

    dest: Location
    base_url: str
    managed_users: tuple[str, ...]
    token_source: TokenSource
    settings: Settings


def activity_config_from_env(environ: Mapping[str, str] | None = None) -> ActivityConfig:
    """Read and check the environment (a ConfigError names the variable that is wrong)."""
    env = os.environ if environ is None else environ
    dest = location_from_env(env, "ARCHIVER_DEST")
    if env.get("ARCHIVER_SOURCE", "").strip():
        check_no_loop(location_from_env(env, "ARCHIVER_SOURCE"), dest)
    return ActivityConfig(
        dest=dest,
        base_url=check_base_url(env.get(BASE_URL_VARIABLE, "")),
        managed_users=managed_users_from(env.get(MANAGED_USERS_VARIABLE, "")),
        token_source=token_source_from(env),
        settings=with_policy_from_env(settings_from_env(env), env),
    )


def check_base_url(raw: str) -> str:
    """`https://host[:port][/path]`, normalised; plain http only to a loopback address."""
    text = raw.strip()
    if not text:
        raise ConfigError(
            f"{BASE_URL_VARIABLE} is not set (your data centre's, e.g. https://www.workato.com)"
        )
    shown = text[:100]
    try:
        parts = urllib.parse.urlsplit(text)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError:
        raise ConfigError(f"{BASE_URL_VARIABLE} is not a URL: {shown!r}") from None
    host = parts.hostname or ""
    if parts.username or parts.password:  # not echoed: that part may be a credential
        raise ConfigError(f"{BASE_URL_VARIABLE} must not carry a user name or password")
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(f"{BASE_URL_VARIABLE} must look like https://www.workato.com, got {shown!r}")
    if parts.query or parts.fragment or any(ch.isspace() for ch in text):
        raise ConfigError(f"{BASE_URL_VARIABLE} must be a plain URL without query or fragment, got {shown!r}")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"{BASE_URL_VARIABLE} must be https (the API token goes with every request), got {shown!r}"
        )
    return normalise_base_url(text)


def managed_users_from(raw: str) -> tuple[str, ...]:
    """Comma-separated managed user ids, or `all`; empty for the token's own workspace."""
    values = [part.strip() for part in raw.split(",") if part.strip()]
    try:
        parse_managed_users(values)
    except ConfigError:
        raise ConfigError(
            f"{MANAGED_USERS_VARIABLE} must be comma-separated managed user ids or 'all', got {raw[:100]!r}"
        ) from None
    return tuple(values)


def token_source_from(env: Mapping[str, str]) -> TokenSource:
    """Which one of WORKATO_API_TOKEN_SECRET and WORKATO_API_TOKEN_PARAMETER is set."""
    secret = env.get(SECRET_VARIABLE, "").strip()
    parameter = env.get(PARAMETER_VARIABLE, "").strip()
    if secret and parameter:
        raise ConfigError(f"set only one of {SECRET_VARIABLE} and {PARAMETER_VARIABLE}, not both")
    if secret:
        return TokenSource("secret", secret)
    if parameter:
        return TokenSource("parameter", parameter)
    raise ConfigError(
        f"set {SECRET_VARIABLE} (a Secrets Manager secret's ARN or name) or {PARAMETER_VARIABLE} "
        "(an SSM SecureString parameter's name) to where the Workato API token is kept"
    )


# --- the token -------------------------------------------------------------------------

_refresh_token = False
"""Set when the API refused the token: the next read skips the cache."""


def read_token(source: TokenSource) -> str:
    """The API token, from Powertools' cache after the first read in this execution environment."""
    global _refresh_token
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        with without_response_bodies_in_debug_logs():
            value = _fetch(source, refresh=_refresh_token)
    except GetParameterError as error:
        cause = " ".join(str(error).split())[:300]
        raise ConfigError(f"cannot read the Workato API token from the {source}: {cause}") from None
    _refresh_token = False
    return token_from(value, source)


def _fetch(source: TokenSource, *, refresh: bool) -> object:
    from aws_lambda_powertools.utilities import parameters

    if source.kind == "secret":
        return parameters.get_secret(source.name, max_age=TOKEN_MAX_AGE_S, force_fetch=refresh)
    return parameters.get_parameter(source.name, decrypt=True, max_age=TOKEN_MAX_AGE_S, force_fetch=refresh)


def forget_token() -> None:
    """Make the next `read_token` fetch the token again (it was refused: rotated, perhaps)."""
    global _refresh_token
    _refresh_token = True


def token_from(value: object, source: TokenSource) -> str:
    """The token in a secret's value: the whole string, or a JSON object's `token`. Never echoed."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"the {source} is binary, not the API token as text") from None
    text = value.strip() if isinstance(value, str) else ""
    if text.startswith("{"):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            document = None
        inner = document.get("token") if isinstance(document, dict) else None
        if not isinstance(inner, str):
            raise ConfigError(f"the {source} holds JSON without a string 'token' key")
        text = inner.strip()
    if not text:
        raise ConfigError(f"the {source} is empty")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ConfigError(f"the {source} holds more than one token (whitespace or control characters)")
    return text


# --- the time box --------------------------------------------------------------------


class TimeBox:
    """The puller's `should_continue`: another chunk only while it can finish before the reserve.

    The longest interval between two questions (one chunk, pulled and committed) is
    the estimate of what the next chunk needs.
    """

    def __init__(
        self,
        time_left: Callable[[], float],
        reserve_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.time_left = time_left
        self.reserve_s = reserve_s
        self.longest_chunk_s = 0.0
        self._clock = clock
        self._last: float | None = None

    def __call__(self) -> bool:
        now = self._clock()
        if self._last is not None:
            self.longest_chunk_s = max(self.longest_chunk_s, now - self._last)
        self._last = now
        return self.time_left() >= self.reserve_s + self.longest_chunk_s


# --- the run -------------------------------------------------------------------------


def run_scheduled_pull(
    *, now: dt.datetime, time_left: Callable[[], float], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Pull up to `now` within the time left; the summary. 401/403 raise ApiAuthError in one line."""
    config = activity_config_from_env(environ)
    token = read_token(config.token_source)
    box = TimeBox(time_left, config.settings.time_reserve_seconds)
    try:
        with quiet_runner() as runner:
            report = runner.run(
                pull_activity(
                    config.dest.url,
                    config.base_url,
                    token,
                    config.settings,
                    managed_users=list(config.managed_users) or None,
                    now=now,
                    should_continue=box,
                )
            )
    except ApiAuthError as error:
        forget_token()
        raise ApiAuthError(auth_message(str(error), config).replace(token, "[redacted]")) from None
    return summarise(report)


def auth_message(original: str, config: ActivityConfig) -> str:
    """The client's "URL answered HTTP 401" with what to check in a Lambda deployment."""
    what = original.removesuffix(AUTH_HINT).rstrip(": ") or "the API refused the token"
    return (
        f"{what}: check the token in the {config.token_source} (wrong, expired or revoked?), that the "
        "API client's role has the activity audit log privilege, and that "
        f"{BASE_URL_VARIABLE} ({config.base_url}) is your data centre's"
    )


def summarise(report: PullReport) -> dict[str, Any]:
    """The run report without what grows with workspaces or event names: a few hundred bytes."""
    full = report.as_dict()
    summary = {
        key: full[key]
        for key in (
            "events_pulled",
            "events_new",
            "events_duplicate",
            "events_rejected",
            "pages",
            "requests",
            "retries",
            "seconds",
            "rate_limit_wait_seconds",
            "window",
        )
    }
    summary["complete"] = not report.stopped_early
    unknown = sorted(report.unknown_event_types.items(), key=lambda item: (-item[1], item[0]))
    summary["unknown_events"] = sum(report.unknown_event_types.values())
    summary["unknown_event_types"] = dict(unknown[:UNKNOWN_NAMES_IN_SUMMARY])
    if len(unknown) > UNKNOWN_NAMES_IN_SUMMARY:
        summary["unknown_event_types_omitted"] = len(unknown) - UNKNOWN_NAMES_IN_SUMMARY
    summary["workspaces"] = len(report.workspaces)
    checkpoints = [entry.get("checkpoint") for entry in report.workspaces]
    summary["oldest_checkpoint"] = min((one for one in checkpoints if one), default=None)
    return summary
