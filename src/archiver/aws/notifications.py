"""Read S3 object notifications out of SQS message bodies: pure, no AWS calls, no environment.

Three shapes reach the queue, and one message body holds exactly one of them:

- an S3 event notification (`{"Records": [{"eventSource": "aws:s3", ...}]}`), sent by
  the bucket straight to SQS or through SNS with raw message delivery. Keys are
  URL-encoded the way HTML forms are (a space is `+`), so they go through `unquote_plus`;
- the same notification wrapped in an SNS envelope (`{"Type": "Notification", "Message": "..."}`);
- an EventBridge event from `aws.s3` (`"detail-type": "Object Created"`, ...). Its
  `detail.object.key` is the key itself, not URL-encoded (AWS's EventBridge event
  structure for S3 shows the raw key), so it is taken as is: decoding it would turn a
  real `+` into a space. (Powertools' `S3EventBridgeNotificationObject.key` does apply
  `unquote_plus`, which is why this module reads the dictionaries itself.)

S3's `s3:TestEvent` and events other than object creation (deletes, restores, lifecycle
transitions) are recognised and yield nothing to archive. Anything else raises
`UnknownMessageError`, so the message is reported as a batch item failure and reaches
the dead-letter queue rather than vanishing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson

from archiver.errors import ArchiverError

EVENTBRIDGE_CREATED = "Object Created"
S3_TEST_EVENT = "s3:TestEvent"


class UnknownMessageError(ArchiverError):
    """A message body of no shape this handler knows; retrying cannot help."""


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One S3 object event: where, which key (decoded), whether it created the object, and what it
    says of the object (size and ETag; a creation event carries both, so the object need not be HEADed).
    """

    bucket: str
    key: str
    created: bool
    etag: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """What one SQS message said: its object events (none for a test event)."""

    kind: str  # "s3", "sns", "eventbridge" or "test"
    events: tuple[ObjectEvent, ...] = ()

    @property
    def created(self) -> tuple[ObjectEvent, ...]:
        return tuple(event for event in self.events if event.created)


def parse_body(body: str | bytes) -> Message:
    """The object events of one SQS message body; raises UnknownMessageError for any other body."""
    document = _json(body, "the message body")
    if not isinstance(document, dict):
        raise UnknownMessageError("the message body is JSON but not an object")
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        inner = _json(document["Message"], "the SNS message")
        if not isinstance(inner, dict):
            raise UnknownMessageError("the SNS message is JSON but not an object")
        message = _parse_document(inner)
        return Message("sns", message.events) if message.kind == "s3" else message
    return _parse_document(document)


def _parse_document(document: Mapping[str, Any]) -> Message:
    if document.get("Event") == S3_TEST_EVENT:
        return Message("test")
    if "Records" in document:
        return Message("s3", tuple(_s3_records(document["Records"])))
    if document.get("source") == "aws.s3" and isinstance(document.get("detail"), dict):
        return Message("eventbridge", (_eventbridge_event(document),))
    raise UnknownMessageError("not an S3 event notification, an SNS notification or an EventBridge S3 event")


def _s3_records(records: object) -> Iterator[ObjectEvent]:
    if not isinstance(records, list) or not records:
        raise UnknownMessageError("`Records` is not a non-empty list")
    for record in records:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise UnknownMessageError("a record is not an S3 event record")
        name = record.get("eventName")
        s3 = record.get("s3")
        if not isinstance(name, str) or not isinstance(s3, dict):
            raise UnknownMessageError("an S3 event record has no eventName or s3 section")
        bucket = _text(s3.get("bucket"), "name")
        raw_key = _text(s3.get("object"), "key")
        yield ObjectEvent(
            bucket=bucket,
            key=unquote_plus(raw_key),
            created=name.startswith("ObjectCreated:"),
            etag=_etag(s3["object"].get("eTag")),
            size=_size(s3["object"].get("size")),
        )


def _eventbridge_event(document: Mapping[str, Any]) -> ObjectEvent:
    detail = document["detail"]
    detail_type = document.get("detail-type")
    if not isinstance(detail_type, str):
        raise UnknownMessageError("an EventBridge S3 event without detail-type")
    found = detail.get("object")
    described = found if isinstance(found, dict) else {}
    return ObjectEvent(
        bucket=_text(detail.get("bucket"), "name"),
        key=_text(found, "key"),  # EventBridge keys are not URL-encoded
        created=detail_type == EVENTBRIDGE_CREATED,
        etag=_etag(described.get("etag")),
        size=_size(described.get("size")),
    )


def _etag(value: object) -> str | None:
    """An event's ETag as listings show it (without quotes), or None when it has none."""
    return (value.strip('"') or None) if isinstance(value, str) else None


def _size(value: object) -> int | None:
    """An event's object size, or None when it has none (a bool is not a size)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(section: object, field: str) -> str:
    value = section.get(field) if isinstance(section, dict) else None
    if not isinstance(value, str) or not value:
        raise UnknownMessageError(f"an S3 event without a {field}")
    return value


def _json(text: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise UnknownMessageError(f"{what} is not JSON") from None


@dataclass(frozen=True, slots=True)
class WatchedPrefix:
    """The source the archiver reads: a bucket and a key prefix ('' or ending in '/')."""

    bucket: str
    prefix: str

    def relative_key(self, event: ObjectEvent) -> str | None:
        """The event's key relative to the prefix, or None when it lies outside the source."""
        if event.bucket != self.bucket or not event.key.startswith(self.prefix):
            return None
        relative = event.key[len(self.prefix) :]
        return relative or None
