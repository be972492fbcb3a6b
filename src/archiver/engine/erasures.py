"""The erasure log: one record per `forget` request under `_archiver/erasures/`, and what runs read of it.

A record names the person only by the keyed hash of the identifier (`kind`,
`subject`), with the id of the key that made it (`key_id`, never the key), the
window whose days were erased (`until` is the request's day when none was given),
when the request was made and completed, and the rows it changed per table and day.

The records are also the markers that keep erased rows out: every run that writes
rows (`compact`, the handlers, `pull-activity`) reads them first and erases their
subjects from what it archives (`formats.erasure`), so a late stream copy, a
re-pulled API event or a job version that arrives afterwards is erased too. That
needs the key: an archive with erasures refuses to run without the key that made them.

A run per event batch (the SQS path) learns the records from one object,
`_archiver/erasures.json` (the log's index: each record's key, kind, subject, key id
and window), with one GET instead of a LIST of the log and a GET per record; runs
that list the source anyway read the log itself. `forget` rewrites the index after recording
its request and before erasing anything, conditionally and from a fresh listing of
the log, so it never drops a record another writer added; a run over an archive
without the index (none yet, or a log from before it) lists the log and writes the
index it finds, only if there is none, so `forget` alone ever replaces one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import orjson

from archiver.errors import ArchiverError, ConfigError, NotFoundError, PreconditionFailedError
from archiver.formats.erasure import KINDS, Erasure, Subject
from archiver.formats.masking import key_id
from archiver.formats.policy import Policy
from archiver.storage.store import ObjectStore

ERASURE_ROOT = "_archiver/erasures/"
INDEX_KEY = "_archiver/erasures.json"
"""The log's index: what runs need of every record, in one object (outside the log's folder)."""
FORMAT_VERSION = 1
INDEX_ATTEMPTS = 5

Counts = dict[str, dict[str, int]]
"""Rows by table and day (`YYYY-MM-DD`)."""


@dataclass(slots=True)
class ErasureRecord:
    """One erasure request, as the log holds it."""

    kind: str
    subject: str
    key_id: str
    requested_at: str
    since: dt.date | None = None
    until: dt.date | None = None
    window: dict[str, str | None] = field(default_factory=dict)
    """The window as requested (`until` None: up to the request's day)."""
    completed_at: str | None = None
    removed: Counts = field(default_factory=dict)
    masked: Counts = field(default_factory=dict)

    def same_request(self, kind: str, subject: str, window: dict[str, str | None]) -> bool:
        return (self.kind, self.subject, self.window) == (kind, subject, window)

    def as_subject(self) -> Subject:
        return Subject(self.kind, self.subject, self.since, self.until)

    def add(self, removed: Counts, masked: Counts) -> None:
        add_counts(self.removed, removed)
        add_counts(self.masked, masked)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT_VERSION,
                "kind": self.kind,
                "subject": self.subject,
                "key_id": self.key_id,
                "since": self.since,
                "until": self.until,
                "window": self.window,
                "requested_at": self.requested_at,
                "completed_at": self.completed_at,
                "removed": self.removed,
                "masked": self.masked,
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )


def add_counts(into: Counts, more: Counts) -> None:
    """Add rows by table and day into `into`."""
    for table, days in more.items():
        held = into.setdefault(table, {})
        for day, rows in days.items():
            held[day] = held.get(day, 0) + rows


def decode_record(data: bytes, key: str) -> ErasureRecord:
    """A record, or ArchiverError naming the object (never its content)."""
    try:
        raw = orjson.loads(data)
        if raw.get("format") != FORMAT_VERSION or raw.get("kind") not in KINDS:
            raise ValueError("format")
        return ErasureRecord(
            kind=str(raw["kind"]),
            subject=str(raw["subject"]),
            key_id=str(raw["key_id"]),
            requested_at=str(raw["requested_at"]),
            since=_date(raw.get("since")),
            until=_date(raw.get("until")),
            window=dict(raw.get("window") or {}),
            completed_at=raw.get("completed_at"),
            removed=dict(raw.get("removed") or {}),
            masked=dict(raw.get("masked") or {}),
        )
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        raise ArchiverError(f"unreadable erasure record {key}") from None


def _date(text: object) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(str(text))


def record_key(requested: dt.datetime, token: str) -> str:
    return f"{ERASURE_ROOT}{requested.strftime('%Y%m%dT%H%M%S%fZ')}-{token}.json"


async def read_log(dest: ObjectStore) -> list[tuple[str, ErasureRecord, str]]:
    """Every record of the log, oldest first: (object key, record, ETag)."""
    keys: list[str] = []
    try:
        async for page in dest.list_pages(ERASURE_ROOT):
            keys.extend(info.key for info in page.objects if info.key.endswith(".json"))
    except NotFoundError:  # an archive not created yet has no log
        return []
    found: list[tuple[str, ErasureRecord, str]] = []
    for key in sorted(keys):
        got = await dest.get(key)
        found.append((key, decode_record(got.body, key), got.etag))
    return found


def erasure_of(records: list[ErasureRecord], policy: Policy) -> Erasure | None:
    """What the records erase, under the policy's key; ConfigError when that key cannot recognise them."""
    if not records:
        return None
    if not policy.key:
        raise ConfigError(
            f"the archive has {len(records)} erasures (forget): set ARCHIVER_POLICY_KEY, the key they "
            "were made with, so that erased people stay erased"
        )
    mine = key_id(policy.key)
    if any(record.key_id != mine for record in records):
        raise ConfigError(
            "ARCHIVER_POLICY_KEY is not the key the archive's erasures were made with: "
            "erased people would not be recognised"
        )
    return Erasure(policy.key, [record.as_subject() for record in records])


def encode_index(log: list[tuple[str, ErasureRecord]]) -> bytes:
    """The index of these (key, record) pairs: what the ingestion guard needs of each, no counts."""
    entries = [
        {
            "key": key,
            "kind": record.kind,
            "subject": record.subject,
            "key_id": record.key_id,
            "since": record.since,
            "until": record.until,
        }
        for key, record in sorted(log, key=lambda pair: pair[0])
    ]
    return orjson.dumps({"format": FORMAT_VERSION, "records": entries}, option=orjson.OPT_SORT_KEYS)


def decode_index(data: bytes) -> list[ErasureRecord]:
    """The records an index names (guard fields only), or ArchiverError naming the index."""
    try:
        raw = orjson.loads(data)
        if raw.get("format") != FORMAT_VERSION:
            raise ValueError("format")
        records = []
        for entry in raw["records"]:
            if entry.get("kind") not in KINDS:
                raise ValueError("kind")
            records.append(
                ErasureRecord(
                    kind=str(entry["kind"]),
                    subject=str(entry["subject"]),
                    key_id=str(entry["key_id"]),
                    requested_at="",
                    since=_date(entry.get("since")),
                    until=_date(entry.get("until")),
                )
            )
        return records
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        raise ArchiverError(f"unreadable erasure index {INDEX_KEY}") from None


async def index_log(dest: ObjectStore) -> None:
    """Rewrite the index from the log as it is now; a rival's index in between makes it list again."""
    for _ in range(INDEX_ATTEMPTS):
        try:
            etag: str | None = (await dest.get(INDEX_KEY)).etag
        except NotFoundError:
            etag = None
        body = encode_index([(key, record) for key, record, _ in await read_log(dest)])
        try:
            if etag is None:
                await dest.put(INDEX_KEY, body, if_none_match=True)
            else:
                await dest.put(INDEX_KEY, body, if_match=etag)
            return
        except PreconditionFailedError:
            continue
    raise ArchiverError(f"could not update {INDEX_KEY}: it kept changing", retryable=True)


async def read_records(dest: ObjectStore) -> list[ErasureRecord]:
    """The records runs apply: one GET of the index, or (no index yet) the log, then its index."""
    try:
        return decode_index((await dest.get(INDEX_KEY)).body)
    except NotFoundError:
        pass
    log = await read_log(dest)
    try:
        await dest.put(INDEX_KEY, encode_index([(key, record) for key, record, _ in log]), if_none_match=True)
    except PreconditionFailedError:
        pass  # a forget (or another run) wrote it meanwhile: what this listing found is no less current
    except NotFoundError:
        pass  # no archive yet (a missing bucket): its first run will tell
    return [record for _, record, _ in log]


async def load_erasure(dest: ObjectStore, policy: Policy, *, by_index: bool = False) -> Erasure | None:
    """The archive's erasures, to apply to every row a run writes.

    From the log itself (one LIST when there are none: a run that lists anyway, and
    whose no-op rerun costs LISTs only), or `by_index` from the index (one GET: a run
    per SQS batch).
    """
    records = await read_records(dest) if by_index else [record for _, record, _ in await read_log(dest)]
    return erasure_of(records, policy)
