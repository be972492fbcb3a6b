"""Sorting a batch into keys to archive, acknowledged events and unknown bodies (no engine, no server)."""

from __future__ import annotations

import json

from archiver.aws.notifications import WatchedPrefix
from archiver.aws.sqs_batch import read_batch, redelivered
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


def test_creation_events_describe_their_objects_and_disagreeing_ones_are_left_to_a_head() -> None:
    # GIVEN the S3, SNS and EventBridge shapes of a creation event, each with size and ETag
    records = [
        *load_event("sqs_s3_notifications.json")["Records"],
        *load_event("sqs_sns_notifications.json")["Records"],
        *load_event("sqs_eventbridge_object_created.json")["Records"],
    ]
    # WHEN the batch is read
    plan = read_batch(records, WATCHED)
    # THEN every key is described by its events' size and quote-less ETag, and none needs a HEAD
    described = {info.key: (info.size, info.etag) for info in plan.objects()}
    assert described == dict.fromkeys(plan.all_keys(), (1024, "0123456789abcdef0123456789abcdef"))
    assert plan.undescribed_keys() == []
    # AND a key announced twice with different ETags (two versions in one batch) is left to a HEAD
    body = json.loads(records[0]["body"])
    body["Records"][0]["s3"]["object"]["eTag"] = "fedcba9876543210fedcba9876543210"
    newer = {**records[0], "messageId": "newer", "body": json.dumps(body)}
    twice = read_batch([records[0], newer], WATCHED)
    assert twice.undescribed_keys() == [JOB_KEY] and twice.objects() == []


def test_a_batch_with_a_message_received_before_is_a_redelivery() -> None:
    # GIVEN real-shaped first deliveries (ApproximateReceiveCount 1)
    records = load_event("sqs_eventbridge_object_created.json")["Records"]
    # WHEN one of them comes again, or one carries no readable count
    again = [
        records[0],
        {**records[1], "attributes": {**records[1]["attributes"], "ApproximateReceiveCount": "2"}},
    ]
    silent = [records[0], {key: value for key, value in records[1].items() if key != "attributes"}]
    # THEN only the batch of first deliveries is no redelivery (it lists no ledger: no sweep)
    assert not redelivered(records)
    assert redelivered(again) and redelivered(silent)
