"""An SQS batch of S3 notifications: read every message, archive the batch's keys once, report failures.

Powertools' batch processor calls a handler per record, but the archiver wants the
whole batch at once: the keys of all messages are grouped by unit inside the engine
and each unit is archived once per batch, with one commit, not once per message.
So the batch is read first (`read_batch`, pure), the engine runs once, and only then
does the processor walk the records, failing exactly the messages whose body had no
known shape or whose objects could not be archived. The processor builds the
`{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}` answer, and is told not
to raise when every record failed, so that answer is what Lambda always gets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from archiver.aws.engine_adapter import KeysOutcome, archive_keys
from archiver.aws.notifications import ObjectEvent, UnknownMessageError, WatchedPrefix, parse_body
from archiver.aws.runtime import Runtime
from archiver.errors import ArchiverError
from archiver.formats.layout import is_json_key
from archiver.storage.store import ObjectInfo


class MessageNotArchivedError(ArchiverError):
    """A message whose body had no known shape, or whose objects could not be archived."""

    retryable = True


@dataclass(slots=True)
class BatchPlan:
    """What a batch asks for: per message the source keys to archive, and what was set aside."""

    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # messageId -> relative keys
    unknown: dict[str, str] = field(default_factory=dict)  # messageId -> why the body is not understood
    ignored: Counter[str] = field(default_factory=Counter)  # reason -> events acknowledged unarchived
    described: dict[str, ObjectInfo | None] = field(default_factory=dict)  # key -> what its events said

    def all_keys(self) -> list[str]:
        return sorted({key for keys in self.keys.values() for key in keys})

    def describe(self, key: str, event: ObjectEvent) -> None:
        """Remember the size and ETag an event gave for `key`; disagreeing (or silent) events void it."""
        info = None if event.size is None or event.etag is None else ObjectInfo(key, event.size, event.etag)
        if key in self.described and self.described[key] != info:
            info = None  # two versions announced in one batch: which is current is the store's to say
        self.described[key] = info

    def objects(self) -> list[ObjectInfo]:
        """The keys whose events said their size and ETag: the engine GETs them without a HEAD first."""
        return [info for info in self.described.values() if info is not None]

    def undescribed_keys(self) -> list[str]:
        """The keys no (agreeing) event described: the engine HEADs these."""
        return sorted(key for key, info in self.described.items() if info is None)


def read_batch(records: Sequence[Mapping[str, Any]], watched: WatchedPrefix) -> BatchPlan:
    """Sort every record's events into keys to archive, acknowledged events, and unknown bodies."""
    plan = BatchPlan()
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            message = parse_body(record.get("body") or "")
        except UnknownMessageError as error:
            plan.unknown[message_id] = str(error)
            continue
        if message.kind == "test":
            plan.ignored["test_event"] += 1
        keys: list[str] = []
        for event in message.events:
            relative = watched.relative_key(event)
            if not event.created:
                plan.ignored["not_a_creation"] += 1
            elif relative is None:
                plan.ignored["outside_source"] += 1
            elif not is_json_key(relative):
                plan.ignored["not_json"] += 1
            else:
                keys.append(relative)
                plan.describe(relative, event)
        plan.keys[message_id] = tuple(keys)
    return plan


@dataclass(slots=True)
class BatchResult:
    """The answer for Lambda, and what the batch did (for logs and metrics)."""

    response: PartialItemFailureResponse
    plan: BatchPlan
    outcome: KeysOutcome | None
    failed_messages: dict[str, str]


def redelivered(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a message was received before: an earlier attempt at it may have crashed mid-commit.

    Such a batch lists its days' ledgers, so its commits remove what a crashed attempt
    left (the engine's `sweep`); a batch of first deliveries reads heads alone. A
    record without a readable count is taken as redelivered.
    """
    for record in records:
        count = str((record.get("attributes") or {}).get("ApproximateReceiveCount", ""))
        if not count.isdigit() or int(count) > 1:
            return True
    return False


def handle_batch(event: Mapping[str, Any], context: Any, runtime: Runtime) -> BatchResult:
    """Archive the batch's objects once, then let Powertools report the messages that failed."""
    source = runtime.deployment.source
    records = list(event.get("Records") or [])
    plan = read_batch(records, WatchedPrefix(source.bucket, source.prefix))
    keys, described = plan.undescribed_keys(), plan.objects()
    outcome: KeysOutcome | None = None
    if keys or described:
        settings = runtime.deployment.settings
        sweep = redelivered(records)
        outcome = runtime.run(
            lambda src, dest: archive_keys(src, dest, settings, keys, described, sweep=sweep)
        )
    failed = dict(plan.unknown)
    if outcome is not None:
        for message_id, message_keys in plan.keys.items():
            reasons = [outcome.failed[key] for key in message_keys if key in outcome.failed]
            if reasons:
                failed[message_id] = f"{len(reasons)} object(s) not archived; first: {reasons[0]}"

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise MessageNotArchivedError(failed[record.message_id])

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=dict(event), record_handler=record_handler, processor=processor, context=context
    )
    return BatchResult(response=response, plan=plan, outcome=outcome, failed_messages=failed)
