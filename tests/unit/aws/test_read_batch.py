"""Sorting a batch into keys to archive, acknowledged events and unknown bodies (no engine, no server)."""

from __future__ import annotations

from archiver.aws.notifications import WatchedPrefix
from archiver.aws.sqs_batch import read_batch
from tests.unit.aws.events import BUCKET, FAILED_KEY, JOB_KEY, PREFIX, SPECIAL_KEY, load_event

WATCHED = WatchedPrefix(BUCKET, PREFIX)


def test_created_json_objects_under_the_source_are_archived_by_message() -> None:
    records = load_event("sqs_s3_notifications.json")["Records"]
    plan = read_batch(records, WATCHED)
    assert list(plan.keys.values()) == [(JOB_KEY,), (FAILED_KEY,), (SPECIAL_KEY,)]
    assert plan.all_keys() == sorted([JOB_KEY, FAILED_KEY, SPECIAL_KEY])
    assert not plan.unknown and not plan.ignored


def test_test_events_deletes_and_foreign_keys_are_acknowledged() -> None:
    records = [
        *load_event("sqs_s3_test_event.json")["Records"],
        *load_event("sqs_delete_events.json")["Records"],
    ]
    plan = read_batch(records, WATCHED)
    assert plan.all_keys() == [] and not plan.unknown
    assert plan.ignored == {"test_event": 1, "not_a_creation": 2}
    # a source elsewhere in the bucket sees the same creations as outside its prefix
    created = load_event("sqs_eventbridge_object_created.json")["Records"]
    elsewhere = read_batch(created, WatchedPrefix(BUCKET, "other/"))
    assert elsewhere.all_keys() == [] and elsewhere.ignored == {"outside_source": 3}


def test_non_json_keys_are_acknowledged_and_unknown_bodies_named() -> None:
    records = load_event("sqs_garbage_body.json")["Records"]
    plan = read_batch(records, WatchedPrefix(BUCKET, PREFIX + "98765/jobs/4321/20240901/j-AEcaNzd9-dGQ4Bf/"))
    assert set(plan.unknown) == {records[0]["messageId"], records[1]["messageId"]}
    assert plan.keys == {records[2]["messageId"]: (JOB_KEY.rsplit("/", 1)[-1],)}
    txt = read_batch(records[2:], WatchedPrefix(BUCKET, "")).keys
    assert list(txt.values()) == [(PREFIX + JOB_KEY,)]
