"""SQS batches for given keys, cloned from the real-shaped events in tests/events/."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

from tests.unit.aws.events import load_event

SHAPES = {
    "s3": "sqs_s3_notifications.json",
    "sns": "sqs_sns_notifications.json",
    "eventbridge": "sqs_eventbridge_object_created.json",
}


def record_for(shape: str, bucket: str, key: str, described: tuple[int, str] | None = None) -> dict[str, Any]:
    """One SQS record announcing `key` (the full key, prefix included) in `bucket`.

    The event says the object's size and ETag are `described`; without it, the sample
    event's (which match no real object, as a stale or odd event would not).
    """
    record = copy.deepcopy(load_event(SHAPES[shape])["Records"][0])
    record["messageId"] = str(uuid.uuid4())
    body = json.loads(record["body"])
    if shape == "eventbridge":
        body["detail"]["bucket"]["name"] = bucket
        body["detail"]["object"]["key"] = key
        body["resources"] = [f"arn:aws:s3:::{bucket}"]
        if described is not None:
            body["detail"]["object"].update(size=described[0], etag=described[1])
    else:
        notification = json.loads(body["Message"]) if shape == "sns" else body
        s3 = notification["Records"][0]["s3"]
        s3["bucket"]["name"] = bucket
        s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        s3["object"]["key"] = quote_plus(key, safe="/")
        if described is not None:
            s3["object"].update(size=described[0], eTag=described[1])
        if shape == "sns":
            body["Message"] = json.dumps(notification)
    record["body"] = json.dumps(body)
    return record


def batch(
    bucket: str,
    prefix: str,
    keys: list[str],
    shapes: tuple[str, ...] = tuple(SHAPES),
    described: Mapping[str, tuple[int, str]] | None = None,
) -> dict[str, Any]:
    """An SQS event with one message per key, shapes taken in turn; `described`: key -> (size, ETag)."""
    return {
        "Records": [
            record_for(shapes[i % len(shapes)], bucket, prefix + key, (described or {}).get(key))
            for i, key in enumerate(keys)
        ]
    }


def redelivered(event: dict[str, Any]) -> dict[str, Any]:
    """The same messages as SQS delivers them again after a failed attempt: received once more."""
    again = copy.deepcopy(event)
    for record in again["Records"]:
        attributes = record.setdefault("attributes", {})
        attributes["ApproximateReceiveCount"] = str(int(attributes.get("ApproximateReceiveCount", "1")) + 1)
    return again


def described_objects(client: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """What S3 would put in each object's creation event: key (relative to `prefix`) -> (size, ETag)."""
    found: dict[str, tuple[int, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", ()):
            found[item["Key"][len(prefix) :]] = (item["Size"], item["ETag"].strip('"'))
    return found


def failed_ids(response: dict[str, Any]) -> set[str]:
    assert set(response) == {"batchItemFailures"}
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}
