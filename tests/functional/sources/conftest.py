"""Fixtures for the activity API tests: the fake API, a simulated clock, an in-memory sink."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from archiver.config import Settings
from archiver.formats.records import ActivityEvent, Row
from archiver.sources.activity_checkpoint import PREFIX, Checkpoint
from archiver.sources.activity_pull import ActivityPuller, PullReport
from archiver.sources.workato import RateLimiter, WorkatoApi
from archiver.storage.localfs import LocalStore
from tests.functional.sources.fake_workato import FakeClock, FakeWorkato, running_fake

TOKEN = "wrk-S3CRET-api-token-5d41402abc4b2a76"
NOW = dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.UTC)


class SinkCrashError(RuntimeError):
    """The simulated crash of the archive while committing."""


class MemorySink:
    """An idempotent in-memory activity sink: what the engine's ledger promises, in a dict.

    Survives across runs (pass the same one), like an archive does; can be told to
    crash on its Nth commit.
    """

    def __init__(self, *, crash_on_commit: int | None = None) -> None:
        self.rows: dict[str, Row] = {}
        self.commits = 0
        self.crash_on_commit = crash_on_commit

    async def commit(self, events: Sequence[ActivityEvent]) -> int:
        self.commits += 1
        if self.crash_on_commit is not None and self.commits == self.crash_on_commit:
            raise SinkCrashError("the archive went away")
        new = 0
        for event in events:
            if event.row["event_id"] not in self.rows:
                self.rows[event.row["event_id"]] = event.row
                new += 1
        return new

    async def close(self) -> None:
        return None


class WatchedStore(LocalStore):
    """A local folder that calls `on_checkpoint` with every checkpoint about to be written."""

    on_checkpoint: Callable[[Checkpoint], None] | None = None

    async def put(
        self, key: str, body: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        if key.startswith(PREFIX) and self.on_checkpoint is not None:
            self.on_checkpoint(Checkpoint.from_json(body, key=key))
        return await super().put(key, body, if_none_match=if_none_match, if_match=if_match)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(wall_start=NOW.timestamp())


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeWorkato]:
    with running_fake(FakeWorkato(token=TOKEN, clock=clock.monotonic)) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> WatchedStore:
    (tmp_path / "dest").mkdir()
    return WatchedStore(tmp_path / "dest")


def api_for(
    fake: FakeWorkato,
    clock: FakeClock,
    *,
    rpm: int = 600,
    max_attempts: int = 5,
    timeout: float = 5.0,
    token: str = TOKEN,
    base_url: str | None = None,
) -> WorkatoApi:
    """A client on the simulated clock: its rate limit, retries and Retry-After cost no wall time."""
    return WorkatoApi(
        base_url or fake.url,
        token,
        limiter=RateLimiter(rpm, clock=clock.monotonic, sleep=clock.sleep),
        max_attempts=max_attempts,
        timeout=timeout,
        sleep=clock.sleep,
        wall_clock=clock.time,
        random=lambda: 0.5,
    )


def pull(
    fake: FakeWorkato,
    clock: FakeClock,
    store: LocalStore,
    sink: MemorySink,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    managed_users: Sequence[str] | None = None,
    now: dt.datetime = NOW,
    overlap_minutes: int = 60,
    batch_pages: int = 2,
    **api: Any,
) -> PullReport:
    """One `pull-activity` run against the fake, on the simulated clock."""
    settings = replace(Settings(), since=since, until=until, api_overlap_minutes=overlap_minutes)

    async def run() -> PullReport:
        async with api_for(fake, clock, **api) as client:
            puller = ActivityPuller(client, store, sink, settings, now=now, batch_pages=batch_pages)
            return await puller.run(managed_users)

    return asyncio.run(run())


def stored_checkpoint(store: LocalStore, name: str = "checkpoint.json") -> Checkpoint:
    key = PREFIX + name
    return Checkpoint.from_json((Path(store.root) / key).read_bytes(), key=key)
