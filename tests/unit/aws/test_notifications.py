"""Reading S3 notifications out of SQS bodies: every shape, key decoding, and what is not understood."""

from __future__ import annotations

import json

import pytest

from archiver.aws.notifications import ObjectEvent, UnknownMessageError, WatchedPrefix, parse_body
from tests.unit.aws.events import BUCKET, FAILED_KEY, JOB_KEY, PREFIX, SPECIAL_KEY, load_event


def bodies(name: str) -> list[str]:
    return [record["body"] for record in load_event(name)["Records"]]


def test_direct_s3_notifications_are_url_decoded() -> None:
    # GIVEN an SQS batch of S3 event notifications, one key holding a space and a real plus
    # WHEN each body is read
    messages = [parse_body(body) for body in bodies("sqs_s3_notifications.json")]
    # THEN every message is one created object, its key decoded (`+` -> space, `%2B` -> plus)
    assert [m.kind for m in messages] == ["s3", "s3", "s3"]
    keys = [event.key for m in messages for event in m.created]
    assert keys == [PREFIX + JOB_KEY, PREFIX + FAILED_KEY, PREFIX + SPECIAL_KEY]
    assert all(event.bucket == BUCKET and event.etag for m in messages for event in m.events)


def test_sns_wrapped_notifications_are_unwrapped_and_decoded() -> None:
    messages = [parse_body(body) for body in bodies("sqs_sns_notifications.json")]
    assert [m.kind for m in messages] == ["sns", "sns"]
    assert [m.created[0].key for m in messages] == [PREFIX + JOB_KEY, PREFIX + SPECIAL_KEY]


def test_eventbridge_keys_are_taken_as_they_are() -> None:
    # GIVEN EventBridge "Object Created" events, whose keys are not URL-encoded
    messages = [parse_body(body) for body in bodies("sqs_eventbridge_object_created.json")]
    # THEN the keys come through untouched: a plus stays a plus
    assert [m.kind for m in messages] == ["eventbridge"] * 3
    assert [m.created[0].key for m in messages] == [
        PREFIX + JOB_KEY,
        PREFIX + FAILED_KEY,
        PREFIX + SPECIAL_KEY,
    ]


def test_a_test_event_and_deletes_yield_nothing_to_archive() -> None:
    (test_event,) = [parse_body(body) for body in bodies("sqs_s3_test_event.json")]
    deletes = [parse_body(body) for body in bodies("sqs_delete_events.json")]
    assert test_event.kind == "test" and test_event.events == ()
    assert [len(m.events) for m in deletes] == [1, 1]
    assert all(m.created == () for m in deletes)


def test_bodies_of_no_known_shape_are_errors() -> None:
    garbage, unknown, good = bodies("sqs_garbage_body.json")
    with pytest.raises(UnknownMessageError, match="not JSON"):
        parse_body(garbage)
    with pytest.raises(UnknownMessageError):
        parse_body(unknown)
    assert parse_body(good).created


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        json.dumps({"Records": []}),
        json.dumps({"Records": [{"eventSource": "aws:sqs"}]}),
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
        json.dumps({"Type": "Notification", "Message": "not json"}),
        json.dumps({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}}),
    ],
)
def test_malformed_notifications_are_errors(body: str) -> None:
    with pytest.raises(UnknownMessageError):
        parse_body(body)


def test_watched_prefix_keeps_only_keys_under_the_source() -> None:
    watched = WatchedPrefix(BUCKET, PREFIX)
    assert watched.relative_key(ObjectEvent(BUCKET, PREFIX + JOB_KEY, True)) == JOB_KEY
    assert watched.relative_key(ObjectEvent("other-bucket", PREFIX + JOB_KEY, True)) is None
    assert watched.relative_key(ObjectEvent(BUCKET, "archive/" + JOB_KEY, True)) is None
    assert watched.relative_key(ObjectEvent(BUCKET, PREFIX, True)) is None
