"""Ids of the activity API's records past 2**53 keep every digit (issue 13, item 6)."""

from __future__ import annotations

import datetime as dt

from tests.functional.sources.conftest import NOW, MemorySink, WatchedStore, pull
from tests.functional.sources.fake_workato import FakeClock, FakeWorkato, record

EVENT_ID = 123456789012345678901  # past 64 bits: orjson alone would read it as a float
WORKSPACE_ID = 98765432109876543210
USER_ID = 18446744073709551616  # 2**64
RESOURCE_ID = 12345678901234567  # within 64 bits, past 2**53


def test_activity_ids_past_2_53_are_archived_digit_for_digit(
    fake: FakeWorkato, clock: FakeClock, store: WatchedStore
) -> None:
    # GIVEN an API record whose ids are JSON integers past 2**53 (the fake writes them digit for digit)
    event = record(EVENT_ID, NOW - dt.timedelta(hours=2), "recipe_started", workspace={"id": WORKSPACE_ID})
    event["user"]["id"] = USER_ID
    event["resource"]["id"] = RESOURCE_ID
    fake.events = [event]
    sink = MemorySink()
    # WHEN it is pulled
    report = pull(fake, clock, store, sink, since=(NOW - dt.timedelta(days=1)).date())
    # THEN its row holds every id exactly, as text
    assert report.events_new == 1
    (row,) = sink.rows.values()
    assert (row["event_id"], row["team_id"], row["user_id"], row["resource_id"]) == (
        "123456789012345678901",
        "98765432109876543210",
        "18446744073709551616",
        "12345678901234567",
    )
