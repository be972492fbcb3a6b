"""`pull-activity`: archive Workato's activity audit log API into the `activity` table.

Each run pulls, per workspace, a window of event time (from the checkpoint less an
overlap, since events can appear late; a year back on the first run; or the
`--since`/`--until` days), in chunks of a day. A chunk's pages become `activity`
rows through the formats core and go to an `ActivitySink` a few pages at a time,
so memory holds one batch and one chunk's ids. Only when every batch of a chunk is
committed does the checkpoint move to the chunk's end: a crash re-pulls a chunk,
never skips one. The sink is idempotent on the event (Workato's `id`), so the
re-pulled overlap and a crashed chunk's batches add nothing the second time.

A run can be time-boxed (a Lambda invocation): `should_continue` is asked before
every chunk, and when it says no the run stops there, reports `stopped_early`, and
the checkpoint already says where the next run starts.

The sink lives with the engine (the activity ledger that also dedupes the S3
stream's copies of the same events); this module only defines what it must do.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from archiver.config import Settings
from archiver.errors import ConfigError
from archiver.formats.catalogue import is_known
from archiver.formats.envelopes import ACTIVITY_API, Envelope
from archiver.formats.normalize import read_activity
from archiver.formats.records import ActivityEvent
from archiver.sources.activity_checkpoint import (
    Checkpoint,
    advance_checkpoint,
    checkpoint_key,
    load_checkpoint,
)
from archiver.sources.workato.client import Record, WorkatoApi, activity_path
from archiver.sources.workato.limiter import RateLimiter
from archiver.storage.store import ObjectStore

log = logging.getLogger(__name__)

BACKFILL = dt.timedelta(days=365)
"""How far back a first pull reaches: Workato keeps the activity log for a year."""
CHUNK = dt.timedelta(days=1)
"""Event time pulled between two checkpoints: what a crash can make a rerun pull again."""
BATCH_PAGES = 10
"""Pages (of up to 100 events) handed to the sink in one commit."""
BOUNDARY_OVERLAP = dt.timedelta(seconds=1)
"""Consecutive chunks share a second: whether `from`/`to` are inclusive is not documented."""
ALL_MANAGED_USERS = "all"
_MANAGED_USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Progress = Callable[[int], None]
ShouldContinue = Callable[[], bool]
"""Asked before each chunk is pulled: False stops the run there (the checkpoint keeps its place)."""


class ActivitySink(Protocol):
    """Where pulled events are archived: the engine's activity ledger implements it."""

    async def commit(self, events: Sequence[ActivityEvent]) -> int:
        """Durably archive `events`; return how many were not archived before.

        Idempotent on the event's identity (`event_id`, Workato's id for API events):
        committing the same events again adds nothing and returns 0. When it returns,
        the events must survive a crash; the puller advances its checkpoint after it.
        """
        ...

    async def close(self) -> None:
        """Release what the sink holds (flush nothing: every commit is already durable)."""
        ...


async def open_sink(dest: ObjectStore, settings: Settings) -> ActivitySink:
    """The archive's activity sink on DEST: the engine's per-day activity ledgers."""
    from archiver.engine import api

    return await api.activity_sink(dest, settings)


@dataclass(slots=True)
class PullReport:
    """What one `pull-activity` run did, for `--json` and the Lambda summary."""

    events_pulled: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    events_rejected: int = 0
    pages: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    seconds: float = 0.0
    rate_limit_wait_seconds: float = 0.0
    unknown_event_types: Counter[str] = field(default_factory=Counter)
    window: dict[str, str] | None = None
    managed_users: list[str] = field(default_factory=list)
    workspaces: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_pulled": self.events_pulled,
            "events_new": self.events_new,
            "events_duplicate": self.events_duplicate,
            "events_rejected": self.events_rejected,
            "rows": {"activity": self.events_new},
            "pages": self.pages,
            "requests": dict(self.requests),
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
            "unknown_event_types": dict(sorted(self.unknown_event_types.items())),
            "window": self.window,
            "managed_users": list(self.managed_users),
            "workspaces": list(self.workspaces),
            "stopped_early": self.stopped_early,
        }


@dataclass(frozen=True, slots=True)
class Window:
    """A span of event time, [start, end]."""

    start: dt.datetime
    end: dt.datetime

    def as_dict(self) -> dict[str, str]:
        return {"from": _iso(self.start), "to": _iso(self.end)}


# --- pure planning and conversion ------------------------------------------------------


def plan_window(
    checkpoint: Checkpoint | None,
    *,
    now: dt.datetime,
    overlap: dt.timedelta,
    since: dt.date | None = None,
    until: dt.date | None = None,
    backfill: dt.timedelta = BACKFILL,
) -> Window | None:
    """The event time to pull for one workspace, or None when there is none.

    `since`/`until` are whole UTC days, both inclusive, and override the checkpoint.
    """
    if since is not None:
        start = _midnight(since)
    elif checkpoint is not None:
        start = checkpoint.through - overlap
    else:
        start = now - backfill
    end = now if until is None else min(now, _midnight(until + dt.timedelta(days=1)))
    return Window(start, end) if start < end else None


def split_window(window: Window, chunk: dt.timedelta = CHUNK) -> list[Window]:
    """Consecutive chunks of at most `chunk` covering `window`, each sharing a second with the last."""
    chunks: list[Window] = []
    start = window.start
    while True:
        end = min(start + chunk, window.end)
        query_start = start if not chunks else start - BOUNDARY_OVERLAP
        chunks.append(Window(query_start, end))
        if end >= window.end:
            return chunks
        start = end


def api_events(records: Sequence[Record], *, managed_user_id: str | None) -> tuple[list[ActivityEvent], int]:
    """`activity` rows for API records (via the formats core), and how many had to be dropped.

    A record is dropped only when it has no readable timestamp: without one it has
    no partition. Rows of a customer workspace name it in `team_id` when the record
    does not.
    """
    source_key = "api:" + activity_path(managed_user_id)
    events: list[ActivityEvent] = []
    dropped = 0
    for record in records:
        result = read_activity(Envelope(ACTIVITY_API, record), key=source_key, etag="")
        if not isinstance(result, ActivityEvent):
            dropped += 1
            continue
        result.row["source_etag"] = None
        if managed_user_id is not None and result.row["team_id"] is None:
            result.row["team_id"] = managed_user_id
        events.append(result)
    return events, dropped


def parse_managed_users(values: Sequence[str] | None) -> tuple[bool, list[str]]:
    """(whether `all` was asked, the explicit ids), validated; ids become checkpoint key parts."""
    every = False
    ids: list[str] = []
    for value in values or ():
        text = value.strip()
        if text.lower() == ALL_MANAGED_USERS:
            every = True
        elif _MANAGED_USER_ID.match(text):
            if text not in ids:
                ids.append(text)
        else:
            raise ConfigError(f"--managed-user must be an id or 'all', got {value!r}")
    return every, ids


# --- the run -----------------------------------------------------------------------------


@dataclass
class ActivityPuller:
    """Pulls windows of the activity log for one or more workspaces into a sink."""

    api: WorkatoApi
    dest: ObjectStore
    sink: ActivitySink
    settings: Settings
    now: dt.datetime
    progress: Progress | None = None
    should_continue: ShouldContinue | None = None
    chunk: dt.timedelta = CHUNK
    batch_pages: int = BATCH_PAGES
    report: PullReport = field(default_factory=PullReport)

    async def run(self, managed_users: Sequence[str] | None = None) -> PullReport:
        """Pull every requested workspace (the token's own when `managed_users` is empty)."""
        started = time.perf_counter()
        try:
            every, ids = parse_managed_users(managed_users)
            if every:
                ids = [*ids, *(one for one in await self.api.managed_user_ids() if one not in ids)]
            self.report.managed_users = list(ids)
            targets: list[str | None] = list(ids) if (every or ids) else [None]
            for target in targets:
                if self.report.stopped_early:
                    break
                await self.pull_workspace(target)
        finally:
            self.report.requests = self.api.counts.as_report()
            self.report.retries = self.api.counts.retries
            self.report.rate_limit_wait_seconds = self.api.limiter.waited
            self.report.seconds = time.perf_counter() - started
        return self.report

    async def pull_workspace(self, managed_user_id: str | None) -> None:
        key = checkpoint_key(managed_user_id)
        checkpoint, etag = await load_checkpoint(self.dest, key)
        window = plan_window(
            checkpoint,
            now=self.now,
            overlap=dt.timedelta(minutes=self.settings.api_overlap_minutes),
            since=self.settings.since,
            until=self.settings.until,
        )
        entry: dict[str, Any] = {"managed_user_id": managed_user_id, "window": None}
        self.report.workspaces.append(entry)
        if window is None:
            entry["checkpoint"] = None if checkpoint is None else _iso(checkpoint.through)
            return
        entry["window"] = window.as_dict()
        self._widen_report_window(window)
        template = Checkpoint(
            covered_from=window.start,
            through=window.end,
            managed_user_id=managed_user_id,
            base_url=self.api.base_url,
            updated_at=self.now,
        )
        log.info("pulling %s from %s to %s", activity_path(managed_user_id), window.start, window.end)
        for part in split_window(window, self.chunk):
            if self.should_continue is not None and not self.should_continue():
                self.report.stopped_early = entry["stopped_early"] = True
                log.info("stopping before %s: out of time; the next run continues there", _iso(part.start))
                break
            await self.pull_chunk(part, managed_user_id)
            # Everything in this chunk is committed: only now may the checkpoint pass it.
            checkpoint, etag = await advance_checkpoint(
                self.dest, key, checkpoint, etag, part.start, part.end, template=template
            )
        entry["checkpoint"] = None if checkpoint is None else _iso(checkpoint.through)

    async def pull_chunk(self, window: Window, managed_user_id: str | None) -> None:
        """Pull one chunk and commit all of it, a batch of pages at a time."""
        seen: set[str] = set()
        batch: list[ActivityEvent] = []
        pages = 0
        async for records in self.api.activity_pages(
            start=window.start, end=window.end, managed_user_id=managed_user_id
        ):
            self.report.pages += 1
            fresh = self._first_sightings(records, seen)
            events, dropped = api_events(fresh, managed_user_id=managed_user_id)
            self.report.events_pulled += len(events)
            self.report.events_rejected += dropped
            for event in events:
                name = event.row["event"] or ""
                if not is_known(name):
                    self.report.unknown_event_types[name or "(none)"] += 1
            batch.extend(events)
            pages += 1
            if self.progress is not None:
                self.progress(len(records))
            if pages >= self.batch_pages:
                await self._commit(batch)
                batch, pages = [], 0
        await self._commit(batch)

    def _first_sightings(self, records: Sequence[Record], seen: set[str]) -> list[Record]:
        """Records whose id this chunk has not seen yet (the API's order is not documented)."""
        fresh: list[Record] = []
        for record in records:
            identity = record.get("id")
            if isinstance(identity, int | str) and not isinstance(identity, bool):
                text = str(identity)
                if text in seen:
                    self.report.events_duplicate += 1
                    continue
                seen.add(text)
            fresh.append(record)
        return fresh

    async def _commit(self, batch: list[ActivityEvent]) -> None:
        if batch:
            self.report.events_new += await self.sink.commit(batch)

    def _widen_report_window(self, window: Window) -> None:
        if self.report.window is None:
            self.report.window = window.as_dict()
            return
        current = self.report.window
        self.report.window = {
            "from": min(current["from"], _iso(window.start)),
            "to": max(current["to"], _iso(window.end)),
        }


async def pull_activity(
    dest_url: str,
    base_url: str,
    token: str,
    settings: Settings,
    *,
    managed_users: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
    should_continue: ShouldContinue | None = None,
) -> PullReport:
    """Open DEST, its activity sink and the API, pull, and close them: what entry points call."""
    from archiver.storage.location import open_store

    parse_managed_users(managed_users)  # bad arguments fail before anything is opened
    api = WorkatoApi(
        base_url,
        token,
        limiter=RateLimiter(settings.api_requests_per_minute),
        max_attempts=settings.api_max_attempts,
        timeout=float(settings.api_timeout_seconds),
    )
    dest = await open_store(
        dest_url, concurrency=4, create=True, max_attempts=settings.s3_max_attempts,
        retry_mode=settings.s3_retry_mode,
    )  # fmt: skip
    try:
        sink = await open_sink(dest, settings)
        try:
            async with api:
                puller = ActivityPuller(
                    api,
                    dest,
                    sink,
                    settings,
                    now=now or dt.datetime.now(dt.UTC),
                    progress=progress,
                    should_continue=should_continue,
                )
                return await puller.run(managed_users)
        finally:
            await sink.close()
    finally:
        await dest.close()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
