"""`pull-activity`'s puller and client against a loopback fake of Workato's API.

The rate limiter, backoff and Retry-After run on a simulated clock (its `sleep`
advances it at once), and the fake stamps every request with that clock, so rates
are checked in simulated minutes without waiting for them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket

import orjson
import pytest

from archiver.errors import ApiAuthError, ApiError, ApiResponseError, ApiUnreachableError
from archiver.sources.activity_checkpoint import Checkpoint
from archiver.sources.activity_pull import BACKFILL
from tests.functional.sources.conftest import (
    NOW,
    TOKEN,
    MemorySink,
    SinkCrashError,
    WatchedStore,
    api_for,
    pull,
    stored_checkpoint,
)
from tests.functional.sources.fake_workato import (
    FakeClock,
    FakeWorkato,
    Fault,
    make_events,
    record,
    retry_after_date,
)

THREE_DAYS_AGO = (NOW - dt.timedelta(days=3)).date()


def ids_of(events: list[dict[str, object]]) -> set[str]:
    return {str(event["id"]) for event in events}


# --- landing every event once ---------------------------------------------------------


def test_a_multi_page_backfill_lands_every_event_once(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN 750 events over three days, served in no particular order
    fake.events = make_events(
        750, start=NOW - dt.timedelta(days=3), span=dt.timedelta(days=3) - dt.timedelta(hours=1)
    )
    sink = MemorySink()
    # WHEN they are pulled from three days back
    report = pull(fake, clock, store, sink, since=THREE_DAYS_AGO)
    # THEN every event is in the sink once, as an activity row from the formats core
    assert set(sink.rows) == ids_of(fake.events)
    assert report.events_pulled == report.events_new == 750
    assert report.pages >= 8  # 100 a page, so every day took several pages
    assert all(int(seen.params["page[size]"]) == 100 for seen in fake.activity_requests())
    row = sink.rows[str(fake.events[0]["id"])]
    assert row["event_id"] == str(fake.events[0]["id"])
    assert row["team_id"] == "2100003309" and row["source_key"] == "api:/api/activity_logs"
    assert row["category"] != "other" and row["stream_type"] == "activity_api"
    # AND the checkpoint covers the window up to now
    checkpoint = stored_checkpoint(store)
    assert checkpoint.through == NOW
    assert checkpoint.covered_from == dt.datetime(2025, 6, 7, tzinfo=dt.UTC)
    assert report.requests == {"200": len(fake.requests)}
    assert report.window == {"from": "2025-06-07T00:00:00Z", "to": "2025-06-10T12:00:00Z"}


def test_the_first_run_reaches_back_a_year_and_no_further(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN events over the last 400 days
    fake.events = make_events(400, start=NOW - dt.timedelta(days=400), span=dt.timedelta(days=400))
    sink = MemorySink()
    # WHEN the first run has no checkpoint and no --since
    report = pull(fake, clock, store, sink)
    # THEN it pulls exactly the events of the last year, in day chunks
    within = [
        event for event in fake.events if event["timestamp"] >= (NOW - BACKFILL).strftime("%Y-%m-%d %H:%M:%S")
    ]
    assert set(sink.rows) == ids_of(within)
    assert report.window == {"from": "2024-06-10T12:00:00Z", "to": "2025-06-10T12:00:00Z"}
    assert len(fake.activity_requests()) >= 365


def test_a_rerun_adds_nothing_and_reads_only_the_overlap(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN a finished backfill
    fake.events = make_events(300, start=NOW - dt.timedelta(days=2), span=dt.timedelta(days=2))
    sink = MemorySink()
    pull(fake, clock, store, sink, since=THREE_DAYS_AGO)
    fake.requests.clear()
    commits = sink.commits
    # WHEN it runs again a few minutes later
    report = pull(fake, clock, store, sink, now=NOW + dt.timedelta(minutes=5))
    # THEN nothing is new, and only the overlap before the checkpoint was read again
    assert report.events_new == 0
    assert {seen.params["from"] for seen in fake.activity_requests()} == {"2025-06-10T11:00:00Z"}
    assert stored_checkpoint(store).through == NOW + dt.timedelta(minutes=5)
    assert sink.commits - commits <= 1  # the overlap's few events, offered once and refused


def test_an_event_that_appears_late_is_picked_up_by_the_overlap(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN a pull up to NOW, after which an event stamped 30 minutes before NOW appears
    fake.events = make_events(50, start=NOW - dt.timedelta(days=1), span=dt.timedelta(hours=20))
    sink = MemorySink()
    pull(fake, clock, store, sink, since=THREE_DAYS_AGO)
    late = record(99_999, NOW - dt.timedelta(minutes=30), "recipe_stopped")
    fake.events.insert(7, late)
    # WHEN the next run starts
    report = pull(fake, clock, store, sink, now=NOW + dt.timedelta(minutes=10))
    # THEN the late event lands
    assert "99999" in sink.rows and report.events_new == 1


def test_events_on_chunk_boundaries_land_even_if_from_and_to_are_both_exclusive(
    clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN an API whose from/to both exclude their bounds, and events exactly at midnights
    from tests.functional.sources.fake_workato import running_fake

    midnights = [dt.datetime(2025, 6, day, tzinfo=dt.UTC) for day in (8, 9, 10)]
    events = [record(5000 + index, moment, "user_login") for index, moment in enumerate(midnights)]
    events += make_events(120, start=NOW - dt.timedelta(days=2), span=dt.timedelta(days=2))
    sink = MemorySink()
    with running_fake(
        FakeWorkato(
            token=TOKEN, clock=clock.monotonic, events=events, from_inclusive=False, to_inclusive=False
        )
    ) as fake:
        # WHEN they are pulled in day chunks from the 7th
        pull(fake, clock, store, sink, since=dt.date(2025, 6, 7))
    # THEN every event landed (chunks share a second, so no boundary falls between two)
    assert set(sink.rows) == ids_of(events)


def test_a_record_served_twice_in_one_pull_is_offered_once(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN an API that serves one record twice (on two pages)
    fake.events = make_events(150, start=NOW - dt.timedelta(hours=10), span=dt.timedelta(hours=9))
    fake.events.insert(120, dict(fake.events[3]))
    sink = MemorySink()
    # WHEN it is pulled
    report = pull(fake, clock, store, sink, since=NOW.date())
    # THEN the repeat is counted, not committed twice
    assert report.events_duplicate == 1
    assert report.events_pulled == report.events_new == 150


# --- crashes -------------------------------------------------------------------------


def test_a_crash_after_some_pages_then_a_rerun_lands_everything_once(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN 900 events over three days and a sink that crashes on its fourth commit
    fake.events = make_events(
        900, start=NOW - dt.timedelta(days=3), span=dt.timedelta(days=3) - dt.timedelta(hours=1)
    )
    sink = MemorySink(crash_on_commit=4)
    written: list[Checkpoint] = []

    def every_covered_event_is_committed(checkpoint: Checkpoint) -> None:
        covered = {
            str(event["id"])
            for event in fake.events
            if checkpoint.covered_from.strftime("%Y-%m-%d %H:%M:%S")
            <= str(event["timestamp"])[:19]
            <= checkpoint.through.strftime("%Y-%m-%d %H:%M:%S")
        }
        assert covered <= set(sink.rows), "the checkpoint passed events the sink had not committed"
        written.append(checkpoint)

    store.on_checkpoint = every_covered_event_is_committed
    # WHEN the pull crashes part-way
    with pytest.raises(SinkCrashError):
        pull(fake, clock, store, sink, since=THREE_DAYS_AGO)
    landed_before = len(sink.rows)
    assert 0 < landed_before < 900
    assert written and written[-1].through < NOW
    # AND the next run (same archive) starts again from the checkpoint
    sink.crash_on_commit = None
    report = pull(fake, clock, store, sink)
    # THEN every event is in the archive once, and the two runs added it once between them
    assert set(sink.rows) == ids_of(fake.events)
    assert landed_before + report.events_new == 900
    assert stored_checkpoint(store).through == NOW


# --- rate limit and retries -----------------------------------------------------------


def test_the_rate_limiter_holds_its_rate(fake: FakeWorkato, clock: FakeClock, store: WatchedStore) -> None:
    # GIVEN a limit of 10 requests a minute and a pull of about 30 requests
    fake.events = make_events(
        1200, start=NOW - dt.timedelta(days=3), span=dt.timedelta(days=3) - dt.timedelta(hours=1)
    )
    # WHEN it runs
    pull(fake, clock, store, MemorySink(), since=THREE_DAYS_AGO, rpm=10)
    # THEN no 60-second window (on the clock the fake saw) holds more than 10 requests
    times = [seen.at for seen in fake.requests]
    assert len(times) >= 12
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) == 10
    # AND the run took as long as the rate demands
    assert times[-1] - times[0] >= (len(times) - 1) * 6.0 - 1e-6


@pytest.mark.parametrize(
    ("retry_after", "lowest", "highest"),
    [("7", 7.0, 7.0), ("date", 4.0, 5.0), (None, 0.5, 0.5)],
    ids=["seconds", "http-date", "absent-backoff"],
)
def test_a_429_is_retried_after_what_retry_after_says(
    fake: FakeWorkato,
    clock: FakeClock,
    store: WatchedStore,
    retry_after: str | None,
    lowest: float,
    highest: float,
) -> None:
    # GIVEN an API that answers the first request with 429 (Retry-After in seconds, as a date, or absent)
    fake.events = make_events(30, start=NOW - dt.timedelta(hours=5), span=dt.timedelta(hours=4))
    header = retry_after_date(clock, 5) if retry_after == "date" else retry_after
    fake.faults.append(Fault("429", retry_after=header))
    sink = MemorySink()
    # WHEN it is pulled
    report = pull(fake, clock, store, sink, since=NOW.date())
    # THEN the retry waited as told (or a jittered backoff: 0.5 of 1 s here), and succeeded
    assert lowest <= clock.sleeps[0] <= highest
    first, second = fake.requests[0], fake.requests[1]
    assert second.at - first.at >= lowest - 1e-6
    assert report.retries == 1 and report.requests == {"200": len(fake.requests) - 1, "429": 1}
    assert len(sink.rows) == 30


def test_server_errors_resets_and_timeouts_are_retried(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN a 500, a connection reset and an answer slower than the client's timeout
    fake.events = make_events(30, start=NOW - dt.timedelta(hours=5), span=dt.timedelta(hours=4))
    # (aiohttp itself retries a reset of a kept-alive connection once, so two resets make one failure)
    fake.faults += [Fault("500"), Fault("reset"), Fault("reset"), Fault("slow", seconds=1.5)]
    sink = MemorySink()
    # WHEN it is pulled with a short timeout
    report = pull(fake, clock, store, sink, since=NOW.date(), timeout=0.3)
    # THEN each was retried with backoff, and everything landed
    assert report.retries == 3
    assert report.requests["500"] == 1 and report.requests["error"] == 2
    assert clock.sleeps[:3] == [0.5, 1.0, 2.0]  # full jitter at 0.5: half of 1, 2, 4 seconds
    assert len(sink.rows) == 30


def test_retries_are_bounded(fake: FakeWorkato, clock: FakeClock, store: WatchedStore) -> None:
    # GIVEN an API that keeps answering 503
    fake.faults += [Fault("503") for _ in range(10)]
    # WHEN a pull makes at most 4 attempts
    with pytest.raises(ApiUnreachableError) as caught:
        pull(fake, clock, store, MemorySink(), since=NOW.date(), max_attempts=4)
    # THEN it gave up after 4 requests, saying what kept failing
    assert len(fake.requests) == 4
    assert "HTTP 503 after 4 attempts" in str(caught.value)
    assert caught.value.retryable


# --- errors the user must fix ---------------------------------------------------------


def test_a_rejected_token_says_what_to_check_and_is_not_retried(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN a token the API does not accept
    # WHEN a pull starts
    with pytest.raises(ApiAuthError) as caught:
        pull(fake, clock, store, MemorySink(), since=NOW.date(), token="wrong-token-1234")
    # THEN one request was made, and the one-line error names the token, the privilege and the base URL
    message = str(caught.value)
    assert len(fake.requests) == 1 and fake.requests[0].status == 401
    assert "\n" not in message
    assert "WORKATO_API_TOKEN" in message and "privilege" in message and "--base-url" in message
    assert "wrong-token-1234" not in message


def test_an_html_answer_means_a_wrong_base_url(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN a base URL that answers a sign-in page instead of JSON
    fake.faults.append(Fault("html"))
    # WHEN a pull starts
    with pytest.raises(ApiResponseError) as caught:
        pull(fake, clock, store, MemorySink(), since=NOW.date())
    # THEN the error says it is not JSON and to check the base URL
    assert "text/html, not JSON" in str(caught.value) and "--base-url" in str(caught.value)


def test_an_unreachable_base_url_is_retried_then_named(clock: FakeClock, store: WatchedStore) -> None:
    # GIVEN a base URL where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeWorkato(token=TOKEN, url=f"http://127.0.0.1:{port}")
    # WHEN a pull starts
    with pytest.raises(ApiUnreachableError) as caught:
        pull(fake, clock, store, MemorySink(), since=NOW.date(), max_attempts=3)
    # THEN it tried three times and names the cause and what to check
    assert "cannot connect" in str(caught.value) and "after 3 attempts" in str(caught.value)
    assert "--base-url" in str(caught.value)


def test_the_token_never_appears_in_logs_errors_reports_or_reprs(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN logging at DEBUG for everything, and runs that succeed, retry and fail
    caplog.set_level(logging.DEBUG)
    fake.events = make_events(120, start=NOW - dt.timedelta(hours=5), span=dt.timedelta(hours=4))
    fake.faults += [Fault("429", retry_after="2"), Fault("500"), Fault("reset"), Fault("reset")]
    texts: list[str] = []
    # WHEN they run
    report = pull(fake, clock, store, MemorySink(), since=NOW.date())
    texts.append(orjson.dumps(report.as_dict()).decode())
    for fault in ("401", "html", "404"):
        fake.faults.append(Fault(fault))
        with pytest.raises(ApiError) as caught:
            pull(fake, clock, store, MemorySink(), since=NOW.date())
        texts += [str(caught.value), repr(caught.value)]
    client = api_for(fake, clock)
    texts += [repr(client), repr(client.limiter), repr(client.counts)]
    # THEN the token is nowhere
    texts += [caplog.text] + [str(record.args) for record in caplog.records]
    assert caplog.records, "the runs should have logged something at DEBUG"
    assert all(TOKEN not in text for text in texts)


# --- the catalogue and managed users ---------------------------------------------------


def test_unknown_event_types_are_counted_and_kept_as_other(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN events of a type the catalogue does not know
    fake.events = make_events(
        40,
        start=NOW - dt.timedelta(hours=5),
        span=dt.timedelta(hours=4),
        names=("user_login", "quantum_flux_enabled"),
    )
    sink = MemorySink()
    # WHEN they are pulled
    report = pull(fake, clock, store, sink, since=NOW.date())
    # THEN the run counts them by name, and their rows are kept with category "other"
    assert report.unknown_event_types == {"quantum_flux_enabled": 20}
    odd = [row for row in sink.rows.values() if row["event"] == "quantum_flux_enabled"]
    assert len(odd) == 20 and {row["category"] for row in odd} == {"other"}


@pytest.mark.parametrize("answer_key", ["result", "data"])
def test_all_managed_users_are_pulled_each_with_its_own_checkpoint(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore, answer_key: str
) -> None:
    # GIVEN two customer workspaces (one whose records name no workspace), listed as {"result"|"data": [...]}
    fake.managed_users_key = answer_key
    fake.managed = {
        "111": make_events(130, start=NOW - dt.timedelta(hours=9), span=dt.timedelta(hours=8), first_id=1,
                           workspace={"id": 111, "name": "Customer A"}),
        "222": make_events(20, start=NOW - dt.timedelta(hours=9), span=dt.timedelta(hours=8), first_id=500,
                           omit_workspace=True),
    }  # fmt: skip
    fake.events = make_events(10, start=NOW - dt.timedelta(hours=9), span=dt.timedelta(hours=8), first_id=900)
    sink = MemorySink()
    # WHEN `--managed-user all` is pulled
    report = pull(fake, clock, store, sink, since=NOW.date(), managed_users=["all"])
    # THEN both customers' events landed, their rows name their workspace, and each has a checkpoint
    assert set(sink.rows) == ids_of(fake.managed["111"]) | ids_of(fake.managed["222"])
    assert {row["team_id"] for row in sink.rows.values()} == {"111", "222"}
    assert {row["source_key"] for row in sink.rows.values() if row["team_id"] == "222"} == {
        "api:/api/managed_users/222/activity_logs"
    }
    assert stored_checkpoint(store, "checkpoint-111.json").through == NOW
    assert stored_checkpoint(store, "checkpoint-222.json").through == NOW
    assert report.managed_users == ["111", "222"]
    assert [entry["managed_user_id"] for entry in report.workspaces] == ["111", "222"]


def test_an_explicit_managed_user_is_pulled_alone(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN two customer workspaces
    fake.managed = {
        "111": make_events(5, start=NOW - dt.timedelta(hours=9), span=dt.timedelta(hours=8), first_id=1),
        "222": make_events(5, start=NOW - dt.timedelta(hours=9), span=dt.timedelta(hours=8), first_id=500),
    }
    sink = MemorySink()
    # WHEN only one is asked for
    pull(fake, clock, store, sink, since=NOW.date(), managed_users=["222"])
    # THEN only its log was read
    assert set(sink.rows) == ids_of(fake.managed["222"])
    assert {seen.path for seen in fake.requests} == {"/api/managed_users/222/activity_logs"}


def test_the_client_refuses_requests_outside_its_context(fake: FakeWorkato, clock: FakeClock) -> None:
    # GIVEN a client that was not entered
    client = api_for(fake, clock)
    # WHEN it is used THEN it says how to use it
    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(client.managed_user_ids())
