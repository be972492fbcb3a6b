"""SQS batches for given keys, cloned from the real-shaped events in tests/events/."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any
from urllib.parse import quote_plus

from tests.unit.aws.events import load_event

SHAPES = {
    "s3": "sqs_s3_notifications.json",
    "sns": "sqs_sns_notifications.json",
    "eventbridge": "sqs_eventbridge_object_created.json",
}


def record_for(shape: str, bucket: str, key: str) -> dict[str, Any]:
    """One SQS record announcing `key` (the full key, prefix included) in `bucket`."""
    record = copy.deepcopy(load_event(SHAPES[shape])["Records"][0])
    record["messageId"] = str(uuid.uuid4())
    body = json.loads(record["body"])
    if shape == "eventbridge":
        body["detail"]["bucket"]["name"] = bucket
        body["detail"]["object"]["key"] = key
        body["resources"] = [f"arn:aws:s3:::{bucket}"]
    else:
        notification = json.loads(body["Message"]) if shape == "sns" else body
        s3 = notification["Records"][0]["s3"]
        s3["bucket"]["name"] = bucket
        s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        s3["object"]["key"] = quote_plus(key, safe="/")
        if shape == "sns":
            body["Message"] = json.dumps(notification)
    record["body"] = json.dumps(body)
    return record


def batch(
    bucket: str, prefix: str, keys: list[str], shapes: tuple[str, ...] = tuple(SHAPES)
) -> dict[str, Any]:
    """An SQS event with one message per key, shapes taken in turn."""
    return {
        "Records": [record_for(shapes[i % len(shapes)], bucket, prefix + key) for i, key in enumerate(keys)]
    }


def failed_ids(response: dict[str, Any]) -> set[str]:
    assert set(response) == {"batchItemFailures"}
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}
