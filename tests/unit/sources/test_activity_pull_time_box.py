"""The puller's time box: `should_continue` is asked before every chunk; a "no" stops the run there.

The API is a stub that serves one record per day asked for, the archive a local
folder, the sink a dict: what is checked is only where the run stops and that the
checkpoint lets the next run continue from exactly there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from archiver.config import Settings
from archiver.formats.records import ActivityEvent
from archiver.sources.activity_checkpoint import Checkpoint, checkpoint_key
from archiver.sources.activity_pull import ActivityPuller, PullReport, ShouldContinue
from archiver.sources.workato.client import ApiCounts
from archiver.sources.workato.limiter import RateLimiter
from archiver.storage.localfs import LocalStore

NOW = dt.datetime(2025, 6, 10, 12, 0, tzinfo=dt.UTC)
SINCE = dt.date(2025, 6, 5)  # six chunks: the 5th to the 9th, and the 10th until noon


class StubApi:
    """One `user_login` per chunk asked for, stamped at the chunk's start plus a minute."""

    def __init__(self, managed: Sequence[str] = ()) -> None:
        self.base_url = "https://www.workato.com"
        self.counts = ApiCounts()
        self.limiter = RateLimiter(60)
        self.asked: list[tuple[str | None, dt.datetime]] = []
        self.managed = list(managed)

    async def activity_pages(
        self, *, start: dt.datetime, end: dt.datetime, managed_user_id: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        self.asked.append((managed_user_id, start))
        moment = start + dt.timedelta(minutes=1)
        yield [
            {
                "id": f"{managed_user_id}-{moment:%Y%m%d}",
                "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "event_type": "user_login",
                "user": {"id": 1, "name": "A", "email": "a@example.com"},
            }
        ]

    async def managed_user_ids(self) -> list[str]:
        return list(self.managed)


class DictSink:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def commit(self, events: Sequence[ActivityEvent]) -> int:
        new = [e.row["event_id"] for e in events if e.row["event_id"] not in self.ids]
        self.ids.extend(new)
        return len(new)

    async def close(self) -> None:
        return None


def allow(chunks: int) -> ShouldContinue:
    """A time box that lets `chunks` chunks start, then says no."""
    answers = iter([True] * chunks)
    return lambda: next(answers, False)


def run(
    api: StubApi,
    store: LocalStore,
    sink: DictSink,
    should_continue: ShouldContinue | None,
    managed_users: Sequence[str] | None = None,
    since: dt.date | None = SINCE,
) -> PullReport:
    settings = Settings(since=since)
    puller = ActivityPuller(
        api,  # type: ignore[arg-type]
        store,
        sink,
        settings,
        now=NOW,
        should_continue=should_continue,
    )
    return asyncio.run(puller.run(managed_users))


def stored(store: LocalStore, managed_user_id: str | None = None) -> Checkpoint:
    key = checkpoint_key(managed_user_id)
    return Checkpoint.from_json((Path(store.root) / key).read_bytes(), key=key)


def test_a_no_stops_before_the_next_chunk_and_the_next_run_continues_there(tmp_path: Path) -> None:
    # GIVEN a window of six day-chunks and a time box that allows two
    store, sink, api = LocalStore(tmp_path), DictSink(), StubApi()
    # WHEN the run is asked before each chunk
    report = run(api, store, sink, allow(2))
    # THEN it pulled two chunks, says it stopped early, and the checkpoint covers exactly those two
    assert len(api.asked) == 2
    assert report.stopped_early is True and report.as_dict()["stopped_early"] is True
    assert report.workspaces[0]["stopped_early"] is True
    assert stored(store).through == dt.datetime(2025, 6, 7, tzinfo=dt.UTC)
    assert report.workspaces[0]["checkpoint"] == "2025-06-07T00:00:00Z"
    # AND the next run, without a time box, pulls the rest: from the checkpoint less the overlap, to now
    again = StubApi()
    rest = run(again, store, sink, None, since=None)
    assert rest.stopped_early is False
    assert again.asked[0][1] == dt.datetime(2025, 6, 7, tzinfo=dt.UTC) - dt.timedelta(hours=1)
    assert stored(store).through == NOW
    assert stored(store).covered_from == dt.datetime(2025, 6, 5, tzinfo=dt.UTC)


def test_a_time_box_that_always_says_yes_changes_nothing(tmp_path: Path) -> None:
    store, sink, api = LocalStore(tmp_path), DictSink(), StubApi()
    report = run(api, store, sink, lambda: True)
    assert len(api.asked) == 6 and report.stopped_early is False
    assert "stopped_early" not in report.workspaces[0]
    assert stored(store).through == NOW


def test_a_no_before_any_chunk_pulls_nothing_and_writes_no_checkpoint(tmp_path: Path) -> None:
    store, sink, api = LocalStore(tmp_path), DictSink(), StubApi()
    report = run(api, store, sink, allow(0))
    assert api.asked == [] and report.stopped_early is True
    assert not (tmp_path / checkpoint_key(None)).exists()


def test_stopping_in_one_workspace_starts_no_other(tmp_path: Path) -> None:
    # GIVEN three customer workspaces and a time box that allows eight chunks (six make a workspace)
    store, sink, api = LocalStore(tmp_path), DictSink(), StubApi(managed=["11", "22", "33"])
    # WHEN all of them are pulled
    report = run(api, store, sink, allow(8), managed_users=["all"])
    # THEN the first is complete, the second stopped after two chunks, the third never started
    assert [one for one, _ in api.asked] == ["11"] * 6 + ["22"] * 2
    assert [entry["managed_user_id"] for entry in report.workspaces] == ["11", "22"]
    assert stored(store, "11").through == NOW
    assert stored(store, "22").through == dt.datetime(2025, 6, 7, tzinfo=dt.UTC)
    assert not (tmp_path / checkpoint_key("33")).exists()
