"""Erasing one person from rows (`archiver forget`): who they are, and what of a row names them.

A person is named by a user id or an e-mail address, and known only by the keyed
hash of it (`masking.hash_text` under the policy key, the value a policy's `hash`
rule gives): the erasure log and the markers that keep later runs from bringing
their rows back never hold the identifier itself. Matching hashes every candidate
value, so the same code erases an archive (`forget`) and rows as they arrive.

What erasing does:
- an `activity` row whose `user_id` is the person's, or whose `user_email` is theirs,
  goes (at ingestion, the event is flagged `erased` and its identifiers hashed);
- in every other row of `jobs`, `job_lines` and `activity`: when the row's
  `user_email` is theirs, `user_email` and `user_name` are hashed; their e-mail
  address anywhere in a text column or payload is hashed when it is the whole value
  and replaced by `[email]` inside longer text; their user id in an id-like payload
  position (a key such as `user_id`, `userId`, `owner_id`, or `id` inside an object
  under a key such as `user`, `member`, `owner`) is hashed. JSON inside strings is
  walked too.

Columns the archive identifies rows by (`policy.PROTECTED`) are never changed:
`jobs.user_id` names a workspace, not a person. Erasing twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from archiver.errors import ConfigError
from archiver.formats.masking import EMAIL_MARK, EMAIL_PATTERN, hash_text
from archiver.formats.policy import PAYLOAD_COLUMNS, PROTECTED, fold
from archiver.formats.records import ActivityEvent, ParsedObject, Row
from archiver.formats.redaction import looks_like_json
from archiver.formats.schema import TABLES

USER_ID, EMAIL = "user_id", "email"
KINDS = (USER_ID, EMAIL)
ERASED_TABLES = ("jobs", "job_lines", "activity")
IDENTIFYING = ("user_email", "user_name")
"""A row's columns that identify the person it names (hashed when its `user_email` is theirs)."""
PERSON_KEYS = frozenset(
    {"user", "users", "member", "members", "owner", "owners", "actor", "person", "people", "author"}
    | {"requester", "assignee", "createdby", "updatedby", "performedby", "requestedby", "submittedby"}
)
"""Folded payload keys whose object's `id` is a user id."""
ID_SUFFIXES = (
    "userid",
    "memberid",
    "ownerid",
    "actorid",
    "personid",
    "requesterid",
    "assigneeid",
    "authorid",
)
"""Folded payload keys that hold a user id."""

_EMAIL = re.compile(EMAIL_PATTERN)
_TEXT_COLUMNS = {
    table: tuple(f.name for f in TABLES[table] if f.type == pa.string() and f.name not in PROTECTED[table])
    for table in ERASED_TABLES
}


def canonical(kind: str, value: str) -> str:
    """The identifier as it is hashed: trimmed; an e-mail address in lower case."""
    text = value.strip()
    return text.lower() if kind == EMAIL else text


def check_identifier(kind: str, value: str) -> str:
    """The identifier, canonical, or ConfigError (one line) when it cannot be one."""
    if kind not in KINDS:
        raise ConfigError(f"forget: unknown identifier kind {kind!r} (user_id or email)")
    text = canonical(kind, value)
    if not text:
        raise ConfigError(f"forget: the {kind.replace('_', ' ')} is empty")
    if kind == EMAIL and _EMAIL.fullmatch(text) is None:
        raise ConfigError("forget: --email is not an e-mail address")
    return text


@dataclass(frozen=True, slots=True)
class Subject:
    """One erased person, by the keyed hash of one identifier, over the days of a window."""

    kind: str
    digest: str
    since: dt.date | None = None
    until: dt.date | None = None

    def covers(self, day: dt.date | None) -> bool:
        """Whether rows of `day` are erased (None: a row of any day)."""
        if day is None:
            return True
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)


def subject_of(
    kind: str, value: str, key: bytes, since: dt.date | None = None, until: dt.date | None = None
) -> Subject:
    """The subject an identifier names, hashed under the policy key (ConfigError if it is no identifier)."""
    return Subject(kind, hash_text(key, check_identifier(kind, value)), since, until)


class Erasure:
    """The subjects an archive erased and the key that recognises them; applies them to rows."""

    def __init__(self, key: bytes, subjects: Iterable[Subject]) -> None:
        self.key = key
        self.subjects = tuple(subjects)
        self._scrubbers: dict[dt.date | None, _Scrubber] = {}

    def __bool__(self) -> bool:
        return bool(self.subjects)

    def scrubber(self, day: dt.date | None) -> _Scrubber:
        """What erases rows of `day` (None: every subject, whatever its window)."""
        found = self._scrubbers.get(day)
        if found is None:
            active = [subject for subject in self.subjects if subject.covers(day)]
            ids = frozenset(s.digest for s in active if s.kind == USER_ID)
            emails = frozenset(s.digest for s in active if s.kind == EMAIL)
            found = self._scrubbers[day] = _Scrubber(self.key, ids, emails)
        return found

    def erase_parsed(self, parsed: ParsedObject) -> ParsedObject:
        """A parsed object's rows with the subjects erased (in place): their events flagged `erased`."""
        for state in parsed.jobs:
            scrubber = self.scrubber(state.day)
            if scrubber:
                scrubber.scrub(state.row, "jobs")
                for line in state.lines:
                    scrubber.scrub(line, "job_lines")
        for event in parsed.activity:
            erase_event(self.scrubber(event.day), event)
        return parsed

    def erase_events(self, events: Iterable[ActivityEvent]) -> None:
        """Activity events (from the API) with the subjects erased, in place."""
        for event in events:
            erase_event(self.scrubber(event.day), event)

    def erase_table(self, table: str, data: pa.Table, day: dt.date | None) -> tuple[pa.Table, list[Row], int]:
        """Rows read back from the archive with the subjects erased: (rows, the rows that went, how many
        changed); the same table when nothing did."""
        scrubber = self.scrubber(day)
        if not scrubber or table not in ERASED_TABLES:
            return data, [], 0
        rows = data.to_pylist()
        gone = [row for row in rows if table == "activity" and scrubber.theirs(row)]
        kept = [row for row in rows if not gone or not scrubber.theirs(row)]
        changed = sum(1 for row in kept if scrubber.scrub(row, table))
        if changed == 0 and not gone:
            return data, [], 0
        return pa.Table.from_pylist(kept, schema=data.schema), gone, changed


def erase_event(scrubber: _Scrubber, event: ActivityEvent) -> None:
    if not scrubber:
        return
    row = event.row
    if scrubber.theirs(row):
        event.erased = True
        for column in ("user_id", *IDENTIFYING):
            value = row.get(column)
            if value is not None:
                row[column] = hash_text(scrubber.key, _str(value))
    else:
        scrubber.scrub(row, "activity")


def _str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Scrubber:
    """Matches and replaces the values that name the subjects active on one day."""

    def __init__(self, key: bytes, ids: frozenset[str], emails: frozenset[str]) -> None:
        self.key = key
        self.ids = ids
        self.emails = emails

    def __bool__(self) -> bool:
        return bool(self.ids or self.emails)

    def is_id(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, str | int):
            return False
        text = str(value).strip()
        return text in self.ids or hash_text(self.key, text) in self.ids

    def is_email(self, value: str) -> bool:
        return value in self.emails or hash_text(self.key, value.strip().lower()) in self.emails

    def theirs(self, row: Row) -> bool:
        """Whether an activity row is the subject's own (their user id, or their e-mail)."""
        email = row.get("user_email")
        return (bool(self.ids) and self.is_id(row.get("user_id"))) or (
            bool(self.emails) and isinstance(email, str) and self.is_email(email)
        )

    def scrub(self, row: Row, table: str) -> bool:
        """Replace, in place, every value of the row that names a subject; whether any did."""
        email = row.get("user_email")
        named = bool(self.emails) and isinstance(email, str) and self.is_email(email)
        payloads = PAYLOAD_COLUMNS[table]
        changed = False
        for column in _TEXT_COLUMNS[table]:
            value = row.get(column)
            if value is None:
                continue
            if named and column in IDENTIFYING:
                new: Any = hash_text(self.key, _str(value))
            elif column in payloads:
                new = self.payload(value)
            else:
                new = self.text(_str(value))
            if new != value:
                row[column] = new
                changed = True
        return changed

    def payload(self, value: str | bytes) -> str | bytes:
        """A JSON payload (or plain text) with the subjects' values replaced; the same value if none."""
        if not self.ids and not (b"@" in value if isinstance(value, bytes) else "@" in value):
            return value
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            return self.text(_str(value))
        new, changed = self.walk(document, "")
        if not changed:
            return value
        encoded = orjson.dumps(new)
        return encoded if isinstance(value, bytes) else encoded.decode()

    def walk(self, value: Any, parent: str) -> tuple[Any, bool]:
        """(new value, whether it changed); `parent` is the folded key holding `value`."""
        if isinstance(value, dict):
            out: dict[str, Any] | None = None
            for name, child in value.items():
                folded = fold(name)
                if self.ids and _id_position(folded, parent) and self.is_id(child):
                    new: Any = hash_text(self.key, str(child).strip())
                    changed = new != child
                else:
                    new, changed = self.walk(child, folded)
                if changed:
                    out = dict(value) if out is None else out
                    out[name] = new
            return (value, False) if out is None else (out, True)
        if isinstance(value, list):
            items: list[Any] | None = None
            for index, child in enumerate(value):
                new, changed = self.walk(child, parent)
                if changed:
                    items = list(value) if items is None else items
                    items[index] = new
            return (value, False) if items is None else (items, True)
        if isinstance(value, str):
            return self._string(value)
        return value, False

    def _string(self, value: str) -> tuple[str, bool]:
        if looks_like_json(value):
            try:
                inner = orjson.loads(value)
            except orjson.JSONDecodeError:
                inner = None
            if isinstance(inner, dict | list):
                new, changed = self.walk(inner, "")
                return (orjson.dumps(new).decode(), True) if changed else (value, False)
        text = self.text(value)
        return text, text != value

    def text(self, value: str) -> str:
        """Text with a subject's e-mail address hashed (the whole value) or replaced by `[email]`."""
        if not self.emails or "@" not in value:
            return value
        if self.is_email(value):
            return hash_text(self.key, value)
        return _EMAIL.sub(lambda match: EMAIL_MARK if self.is_email(match[0]) else match[0], value)


def _id_position(folded: str, parent: str) -> bool:
    """Whether a payload key holds a user id: `user_id`, `ownerId`..., or `id` in a user-like object."""
    if folded == "id":
        return parent in PERSON_KEYS
    return folded.endswith(ID_SUFFIXES)
