"""An async client for Workato's activity audit log API.

HTTP is aiohttp's: it is already installed (aiobotocore, under aioboto3, is built
on it), so the Lambda package gains no new wheels, and it is a mature asyncio client
with connection pooling and per-request timeouts. httpx would have been as good a
client but adds five packages for nothing aiohttp lacks here.

Retries are a short loop of our own rather than tenacity or stamina: the policy
needs the answer's Retry-After (either form), shares the injected clock and sleep
with the rate limiter, and counts retries and statuses for the run report; a retry
library would need custom hooks for each of those and save no code.

The token goes into one header and nowhere else: not into messages, logs, errors or
any repr. Every message this module builds is also passed through `_redact`, in
case a library ever echoes a request back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random as random_module
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
import orjson

from archiver import __version__
from archiver.errors import ApiAuthError, ApiResponseError, ApiUnreachableError, ConfigError
from archiver.formats.numbers import load_exact
from archiver.sources.workato.backoff import backoff_seconds, retry_after_seconds
from archiver.sources.workato.limiter import RateLimiter, Sleep

log = logging.getLogger(__name__)

PAGE_SIZE = 100
"""Records per activity page: the API's maximum and its default."""
MANAGED_USERS_PER_PAGE = 100
MAX_MANAGED_USER_PAGES = 10_000
ACTIVITY_LOGS = "/api/activity_logs"
MANAGED_USERS = "/api/managed_users"
BASE_URL_HINT = (
    "check --base-url is your data centre's (https://www.workato.com, https://app.eu.workato.com, "
    "https://app.jp.workato.com, ...)"
)
AUTH_HINT = (
    "check WORKATO_API_TOKEN (wrong or expired?), that the API client's role has the activity "
    "audit log privilege (environment management: activity logs), and that --base-url is your "
    "data centre's"
)
Record = dict[str, Any]


@dataclass(slots=True)
class ApiCounts:
    """Requests made, by HTTP status ("error" when no answer came), and retries, for the report."""

    by_status: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    def as_report(self) -> dict[str, int]:
        return dict(sorted(self.by_status.items()))


def activity_path(managed_user_id: str | None) -> str:
    """The activity log path of the workspace itself, or of one embedded customer workspace."""
    if managed_user_id is None:
        return ACTIVITY_LOGS
    return f"{MANAGED_USERS}/{managed_user_id}/activity_logs"


def normalise_base_url(url: str) -> str:
    """`https://host[/prefix]` without a trailing slash; anything else is a usage error."""
    text = url.strip().rstrip("/")
    if not text.startswith(("https://", "http://")) or len(text.split("://", 1)[1]) == 0:
        raise ConfigError(f"--base-url must look like https://www.workato.com, got {url!r}")
    return text


class WorkatoApi:
    """GET requests to one Workato data centre with one token: rate-limited, retried, counted."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        limiter: RateLimiter,
        max_attempts: int = 8,
        timeout: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.limiter = limiter
        self.max_attempts = max(1, max_attempts)
        self.timeout = timeout
        self.counts = ApiCounts()
        self._token = token
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._random = random
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"WorkatoApi({self.base_url!r})"

    async def __aenter__(self) -> WorkatoApi:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"Accept": "application/json", "User-Agent": f"archiver/{__version__}"},
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- endpoints ------------------------------------------------------------------

    async def activity_pages(
        self,
        *,
        start: dt.datetime,
        end: dt.datetime,
        managed_user_id: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[list[Record]]:
        """Pages of records whose time lies in [start, end], continued with `page[after]`.

        Stops on a short or empty page. The order of records is not documented, so
        nothing here relies on it: the cursor is simply the last record's id, as the
        API asks. A cursor already used means the API is not advancing; stop rather
        than loop.
        """
        path = activity_path(managed_user_id)
        params = {"page[size]": str(page_size), "from": _iso(start), "to": _iso(end)}
        used: set[str] = set()
        while True:
            records = _records(await self.get_json(path, params), self.base_url + path)
            yield records
            if len(records) < page_size:
                return
            cursor = records[-1].get("id")
            if cursor is None or isinstance(cursor, bool | dict | list):
                log.warning("%s: the last record of a full page has no id; cannot continue this window", path)
                return
            after = str(cursor)
            if after in used:
                log.warning("%s: page[after]=%s came back again; stopping this window", path, after)
                return
            used.add(after)
            params = {**params, "page[after]": after}

    async def managed_user_ids(self) -> list[str]:
        """Every customer workspace of an embedded partner, from the paginated managed users list."""
        ids: list[str] = []
        seen: set[str] = set()
        for page in range(1, MAX_MANAGED_USER_PAGES + 1):
            params = {"page": str(page), "per_page": str(MANAGED_USERS_PER_PAGE)}
            items = _records(await self.get_json(MANAGED_USERS, params), self.base_url + MANAGED_USERS)
            new = [str(item["id"]) for item in items if _is_id(item.get("id"))]
            fresh = [one for one in new if one not in seen]
            seen.update(fresh)
            ids.extend(fresh)
            if len(items) < MANAGED_USERS_PER_PAGE or not fresh:
                break
        return ids

    # --- one request, retried ---------------------------------------------------------

    async def get_json(self, path: str, params: dict[str, str]) -> object:
        """The decoded JSON answer of one GET, after rate limiting and bounded retries."""
        if self._session is None:
            raise RuntimeError("use `async with WorkatoApi(...)` before making requests")
        url = self.base_url + path
        problem = ""
        for attempt in range(self.max_attempts):
            await self.limiter.acquire()
            try:
                async with self._session.get(url, params=params, headers=self._auth()) as response:
                    status = response.status
                    body = await response.read()
                    retry_after = response.headers.get("Retry-After")
                    content_type = response.headers.get("Content-Type", "")
            except (aiohttp.ClientError, TimeoutError) as error:
                self.counts.by_status["error"] += 1
                problem = self._describe(error)
                delay = backoff_seconds(attempt, random=self._random)
            else:
                self.counts.by_status[str(status)] += 1
                log.debug("GET %s %s -> %d (%d bytes)", path, _loggable(params), status, len(body))
                if 200 <= status < 300:
                    return self._decode(url, status, content_type, body)
                if status in (401, 403):
                    raise ApiAuthError(self._redact(f"{url} answered HTTP {status}: {AUTH_HINT}"))
                if status != 429 and status != 408 and status < 500:
                    raise ApiResponseError(self._redact(f"{url} answered HTTP {status}: {BASE_URL_HINT}"))
                problem = f"HTTP {status}"
                waited = retry_after_seconds(retry_after, now=self._wall_clock())
                if waited is not None:
                    self.limiter.defer(waited)
                delay = waited if waited is not None else backoff_seconds(attempt, random=self._random)
            if attempt + 1 >= self.max_attempts:
                break
            self.counts.retries += 1
            log.info("GET %s: %s; retry %d in %.1fs", path, problem, attempt + 1, delay)
            await self._sleep(delay)
        raise ApiUnreachableError(
            self._redact(f"{url}: {problem} after {self.max_attempts} attempts; {BASE_URL_HINT}")
        )

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def _decode(self, url: str, status: int, content_type: str, body: bytes) -> object:
        """The answer's JSON, ids past 2**53 exact (`load_exact`: pages are small, requests rate-limited)."""
        try:
            return load_exact(body)
        except (orjson.JSONDecodeError, RecursionError):
            kind = content_type.split(";")[0].strip() or "no content type"
            raise ApiResponseError(
                self._redact(f"{url} answered HTTP {status} with {kind}, not JSON: {BASE_URL_HINT}")
            ) from None

    def _describe(self, error: BaseException) -> str:
        """A short cause for a failed request, without anything the request carried."""
        if isinstance(error, TimeoutError):
            return f"no answer within {self.timeout:g}s"
        if isinstance(error, aiohttp.ClientConnectorError):
            cause = error.os_error.strerror or type(error.os_error).__name__
            return self._redact(f"cannot connect ({cause})")
        if isinstance(error, aiohttp.ServerDisconnectedError):
            return "the connection closed without an answer"
        return self._redact(f"{type(error).__name__}: {error}")[:200]

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[redacted]") if self._token else text


def _records(document: object, url: str) -> list[Record]:
    """The records of an answer: `{"data": [...]}` as documented, `{"result": [...]}`, or a bare list."""
    items: object = document
    if isinstance(document, dict):
        for key in ("data", "result", "items", "records"):
            if isinstance(document.get(key), list):
                items = document[key]
                break
        else:
            names = ", ".join(sorted(str(key) for key in document)[:8]) or "none"
            raise ApiResponseError(f"{url} answered JSON without a list of records (keys: {names})")
    if not isinstance(items, list):
        raise ApiResponseError(f"{url} answered JSON that is not a list of records: {BASE_URL_HINT}")
    return [item for item in items if isinstance(item, dict)]


def _is_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and bool(value))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _loggable(params: dict[str, str]) -> str:
    return "&".join(f"{key}={value}" for key, value in params.items())
