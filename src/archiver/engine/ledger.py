"""What the archive knows about itself: one ledger per unit of work, kept under `_archiver/units/`.

Each unit (see `units.py`) has:

- `head.json`, the commit point, only ever replaced with a conditional write so
  that of two writers exactly one wins. It names the unit's key range, its
  children once it is sealed, the data files that hold its rows, the index
  segments that describe its source objects, and files retired by earlier
  commits that wait out a grace period before they are deleted.
- index segments (Parquet): one entry per (source object, job) the commit added or
  changed. A commit writes one new segment with what it touched, so its cost
  follows the new work; segments are merged in bounded, size-tiered steps. For
  each source key the newest segment that mentions it holds its complete set of
  entries. A segment also names, in its schema metadata, the data files its commit
  uploads: it is written before them, so a crash leaves it to say what to remove.
- `intent-*` records, written before the uploads of a commit that must also delete
  files after it wins (retired files past their grace), so a crash after the win
  still leaves them named; and `seen-*` markers: a scope whose listing has a marker
  is fully archived, so a rerun can tell from a LIST alone.

All of this is pure: encoding and decoding, no storage calls.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from archiver.engine.units import unit_owner
from archiver.engine.versions import Rank
from archiver.errors import LedgerFormatError as LedgerFormatError  # the decoders' error, re-exported

LEDGER_ROOT = "_archiver/units/"
WATERMARK_ROOT = "_archiver/complete/"
HEAD_NAME = "head.json"
SEEN_PREFIX = "seen-"
SETTLED_PREFIX = "settled-"
INTENT_PREFIX = "intent-"
SEGMENT_PREFIX = "index-"
FORMAT_VERSION = 2
LINEAGE = 32
"""Commit tokens a head remembers, so a writer whose answer was lost can recognise its own commit."""

T = TypeVar("T")


class Outcome(enum.StrEnum):
    """What one source object contributed to the archive."""

    JOB = "job"
    SUPERSEDED = "superseded"
    ACTIVITY = "activity"
    QUARANTINE = "quarantine"


def watermark_key(day: dt.date) -> str:
    """Marks that a complete run (no window, no unit filter, nothing unread) covered the source to `day`."""
    return f"{WATERMARK_ROOT}day={day.isoformat()}"


def unit_of(key: str) -> str:
    """The unit of a ledger key: `_archiver/units/day=2024-08-20.1/head.json` -> `day=2024-08-20.1`."""
    return key[len(LEDGER_ROOT) :].split("/", 1)[0]


def decode_at(key: str, decode: Callable[[bytes], T], data: bytes) -> T:
    """`decode(data)`, read from `key`: a LedgerFormatError then names the unit and the file."""
    try:
        return decode(data)
    except LedgerFormatError as error:
        raise error.naming(unit_of(key), key) from None


def unit_prefix(unit: str) -> str:
    return f"{LEDGER_ROOT}{unit}/"


def head_key(unit: str) -> str:
    return f"{unit_prefix(unit)}{HEAD_NAME}"


def seen_key(unit: str, fingerprint: str) -> str:
    return f"{unit_prefix(unit)}{SEEN_PREFIX}{fingerprint}"


def settled_key(unit: str, fingerprint: str) -> str:
    """Marks that every object routed to the unit, as fingerprinted, is archived: its index is not read."""
    return f"{unit_prefix(unit)}{SETTLED_PREFIX}{fingerprint}"


UPLOADS_METADATA = b"archiver.uploads"
"""The schema metadata of a segment that names the data files its commit uploads (a JSON list)."""


def with_uploads(table: pa.Table, uploads: Iterable[str]) -> pa.Table:
    """A segment's table naming the data files its commit uploads."""
    return table.replace_schema_metadata({UPLOADS_METADATA: orjson.dumps(sorted(uploads))})


def segment_uploads(data: bytes) -> list[str]:
    """The data files a segment's commit uploaded; [] when it names none or cannot be read."""
    try:
        metadata = pq.read_schema(io.BytesIO(data)).metadata or {}
        named = orjson.loads(metadata.get(UPLOADS_METADATA, b"[]"))
    except (pa.ArrowException, OSError, orjson.JSONDecodeError):
        return []
    return [key for key in named if isinstance(key, str)] if isinstance(named, list) else []


def intent_key(unit: str, generation: int, token: str) -> str:
    return f"{unit_prefix(unit)}{INTENT_PREFIX}g{generation:06d}-{token}.json"


def segment_key(unit: str, generation: int, token: str) -> str:
    return f"{unit_prefix(unit)}{SEGMENT_PREFIX}g{generation:06d}-{token}.parquet"


def file_generation(key: str) -> int | None:
    """The generation an intent record or index segment was written for, from its name."""
    name = key.rsplit("/", 1)[-1]
    for prefix in (INTENT_PREFIX, SEGMENT_PREFIX):
        if name.startswith(prefix + "g"):
            digits = name[len(prefix) + 1 : len(prefix) + 7]
            return int(digits) if digits.isdigit() else None
    return None


intent_generation = file_generation


def file_owner(unit: str) -> str:
    """The prefix of the data-file names a unit owns, e.g. `d20240820` or `d20240820.3`."""
    return unit_owner(unit)


@dataclass(frozen=True, slots=True)
class FileRef:
    """One data file of a unit."""

    key: str
    table: str
    rows: int
    bytes: int
    policies: tuple[str, ...] = ()
    """Digests of the redaction policies its rows were written under (empty: not recorded)."""


def absent_or_damaged(refs: Iterable[FileRef], listed: Mapping[str, int]) -> tuple[set[str], set[str]]:
    """Of the data files heads name, those a listing (key -> size) lacks, and those of another size.

    A head records each file's size as written, so a file truncated, emptied or
    rewritten in place is told from a LIST alone; a rewrite of the very same size
    is not (that takes reading the file).
    """
    missing: set[str] = set()
    damaged: set[str] = set()
    for ref in refs:
        size = listed.get(ref.key)
        if size is None:
            missing.add(ref.key)
        elif size != ref.bytes:
            damaged.add(ref.key)
    return missing, damaged


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """One index segment of a unit and how many entries it holds."""

    key: str
    entries: int


@dataclass(frozen=True, slots=True)
class Retired:
    """A data file a commit stopped referring to.

    Without Iceberg tables it is deleted once `since_us` is older than the grace period
    (none by default). With them the publisher owns it: `published` is set before a
    table commit removes the file from a snapshot, so from then on the table's snapshot
    history says when it may go; a file never published goes as soon as the publisher
    sees it (see `engine/publish/superseded.py`).
    """

    key: str
    since_us: int
    published: bool = False


def split_retired(
    retired: list[Retired], now_us: int, grace_us: int, *, published_tables: bool
) -> tuple[list[Retired], list[Retired]]:
    """(kept, due): with Iceberg tables the publisher decides, so nothing is due here."""
    if published_tables:
        return list(retired), []
    due = [item for item in retired if now_us - item.since_us >= grace_us]
    return [item for item in retired if item not in due], due


@dataclass(frozen=True, slots=True)
class Child:
    """A sealed unit's child: it covers keys from `lo` up to the next child's `lo`."""

    unit: str
    lo: str


@dataclass(slots=True)
class Head:
    """The committed state of a unit."""

    unit: str
    generation: int = 0
    lo: str | None = None
    hi: str | None = None
    children: list[Child] = field(default_factory=list)
    segments: list[SegmentRef] = field(default_factory=list)
    files: list[FileRef] = field(default_factory=list)
    retired: list[Retired] = field(default_factory=list)
    lineage: list[str] = field(default_factory=list)

    @property
    def sealed(self) -> bool:
        """A sealed unit takes no new job folders: they go to its children."""
        return bool(self.children)

    @property
    def held(self) -> int:
        """Index entries across segments: an upper bound of the source objects the unit holds."""
        return sum(segment.entries for segment in self.segments)

    def file_keys(self) -> set[str]:
        return {ref.key for ref in self.files}

    def ledger_keys(self) -> set[str]:
        return {segment.key for segment in self.segments}

    def contains(self, folder: str) -> bool:
        return (self.lo is None or folder >= self.lo) and (self.hi is None or folder < self.hi)


def encode_head(head: Head) -> bytes:
    return orjson.dumps(
        {
            "format": FORMAT_VERSION,
            "unit": head.unit,
            "generation": head.generation,
            "lo": head.lo,
            "hi": head.hi,
            "children": [{"unit": child.unit, "lo": child.lo} for child in head.children],
            "segments": [{"key": s.key, "entries": s.entries} for s in head.segments],
            "files": [_encode_file(f) for f in head.files],
            "retired": [_encode_retired(r) for r in head.retired],
            "lineage": head.lineage,
        },
        option=orjson.OPT_INDENT_2,
    )


def _encode_file(ref: FileRef) -> dict[str, object]:
    encoded: dict[str, object] = {"key": ref.key, "table": ref.table, "rows": ref.rows, "bytes": ref.bytes}
    if ref.policies:
        encoded["policies"] = list(ref.policies)
    return encoded


def _encode_retired(item: Retired) -> dict[str, object]:
    encoded: dict[str, object] = {"key": item.key, "since_us": item.since_us}
    if item.published:
        encoded["published"] = True
    return encoded


def decode_head(data: bytes) -> Head:
    """A head, or LedgerFormatError naming what is wrong (never the content)."""
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT_VERSION:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise LedgerFormatError(f"unsupported ledger head format {found!r}")
        head = Head(
            unit=str(raw["unit"]),
            generation=int(raw["generation"]),
            lo=raw.get("lo"),
            hi=raw.get("hi"),
            children=[Child(str(c["unit"]), str(c["lo"])) for c in raw.get("children", [])],
            segments=[SegmentRef(str(s["key"]), int(s["entries"])) for s in raw.get("segments", [])],
            files=[
                FileRef(f["key"], f["table"], int(f["rows"]), int(f["bytes"]), tuple(f.get("policies", ())))
                for f in raw.get("files", [])
            ],
            retired=[
                Retired(str(r["key"]), int(r["since_us"]), bool(r.get("published", False)))
                for r in raw.get("retired", [])
            ],
            lineage=[str(token) for token in raw.get("lineage", [])],
        )
        expected = [f"{head.unit}.{index}" for index in range(len(head.children))]
        if [child.unit for child in head.children] != expected:
            raise LedgerFormatError(f"ledger head of {head.unit} names children that are not its own")
        return head
    except LedgerFormatError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise LedgerFormatError(f"malformed ledger head ({type(error).__name__})") from None


@dataclass(slots=True)
class IndexEntry:
    """One source object the unit holds, identified by (key, ETag); one entry per job it describes."""

    key: str
    etag: str
    size: int
    outcome: Outcome
    user_id: str | None = None
    job_id: str | None = None
    day: dt.date | None = None
    rank: Rank | None = None
    files: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    """For an activity object: `YYYY-MM-DD|identity` of each event it gave its day's activity ledger."""

    @property
    def job(self) -> tuple[str, str] | None:
        """The job this entry describes, as (user_id, job_id)."""
        return None if self.job_id is None else (self.user_id or "", self.job_id)


INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("etag", pa.string()),
        ("size", pa.int64()),
        ("outcome", pa.string()),
        ("user_id", pa.string()),
        ("job_id", pa.string()),
        ("day", pa.date32()),
        ("terminal", pa.bool_()),
        ("completed_us", pa.int64()),
        ("stamp_us", pa.int64()),
        ("modified_us", pa.int64()),
        ("files", pa.list_(pa.string())),
        ("events", pa.list_(pa.string())),
    ]
)


def encode_index(entries: Iterable[IndexEntry], uploads: Iterable[str] = ()) -> bytes:
    """One index segment as zstd Parquet, sorted by key, naming the data files its commit uploads."""
    ordered = sorted(entries, key=lambda entry: (entry.key, entry.user_id or "", entry.job_id or ""))
    ranks = [entry.rank for entry in ordered]
    table = pa.Table.from_arrays(
        [
            pa.array([e.key for e in ordered], pa.string()),
            pa.array([e.etag for e in ordered], pa.string()),
            pa.array([e.size for e in ordered], pa.int64()),
            pa.array([str(e.outcome) for e in ordered], pa.string()),
            pa.array([e.user_id for e in ordered], pa.string()),
            pa.array([e.job_id for e in ordered], pa.string()),
            pa.array([e.day for e in ordered], pa.date32()),
            pa.array([r.terminal if r else None for r in ranks], pa.bool_()),
            pa.array([r.completed_us if r else None for r in ranks], pa.int64()),
            pa.array([r.stamp_us if r else None for r in ranks], pa.int64()),
            pa.array([r.modified_us if r else None for r in ranks], pa.int64()),
            pa.array([list(e.files) for e in ordered], pa.list_(pa.string())),
            pa.array([list(e.events) for e in ordered], pa.list_(pa.string())),
        ],
        schema=INDEX_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(with_uploads(table, uploads), sink, compression="zstd")
    return sink.getvalue()


def decode_index(data: bytes) -> list[IndexEntry]:
    """The entries of one segment, or LedgerFormatError."""
    try:
        table = pq.read_table(io.BytesIO(data))
        columns = {name: table.column(name).to_pylist() for name in INDEX_SCHEMA.names}
    except (pa.ArrowException, KeyError, OSError) as error:
        raise LedgerFormatError(f"malformed index segment ({type(error).__name__})") from None
    entries: list[IndexEntry] = []
    for i, key in enumerate(columns["key"]):
        terminal = columns["terminal"][i]
        rank = None
        if terminal is not None:
            rank = Rank(
                terminal, columns["completed_us"][i], columns["stamp_us"][i], columns["modified_us"][i], key
            )
        entries.append(
            IndexEntry(
                key=key,
                etag=columns["etag"][i],
                size=columns["size"][i],
                outcome=_outcome(columns["outcome"][i]),
                user_id=columns["user_id"][i],
                job_id=columns["job_id"][i],
                day=columns["day"][i],
                rank=rank,
                files=tuple(columns["files"][i] or ()),
                events=tuple(columns["events"][i] or ()),
            )
        )
    return entries


def _outcome(text: str) -> Outcome:
    try:
        return Outcome(text)
    except ValueError:
        raise LedgerFormatError("malformed index segment (unknown outcome)") from None


class Fingerprint:
    """A running digest of (key, ETag) pairs in key order: equal digests mean equal listings."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.count = 0

    def add(self, key: str, etag: str) -> None:
        self._digest.update(f"{key}\0{etag}\n".encode())
        self.count += 1

    def hexdigest(self) -> str:
        return self._digest.hexdigest()[:32]


def seen_digest(source: str, data: str) -> str:
    """A seen marker's name: the source listing's fingerprint joined with the data files' one."""
    return listing_fingerprint([("source", source), ("data", data)])


def listing_fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    fingerprint = Fingerprint()
    for key, etag in pairs:
        fingerprint.add(key, etag)
    return fingerprint.hexdigest()
