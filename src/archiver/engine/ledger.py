"""What the archive knows about itself: one ledger per unit of work, kept under `_archiver/`.

A unit is one source day (`day=YYYY-MM-DD`, every object whose key sits in that
day's folders) or `loose` (JSON objects outside the documented key layout).
Each unit has:

- `head.json`, the commit point: the generation number, the data files that make
  up the unit's rows, the source index that belongs to them, and files that a
  superseded generation left to delete. It is only ever replaced with a
  conditional write, so of two writers exactly one wins.
- an immutable source index (Parquet): one entry per source object the unit holds,
  by (key, ETag), with what it contributed and which data files hold its rows.
- `seen-<fingerprint>` markers: a listing whose fingerprint has a marker is fully
  archived, so a rerun can tell from a LIST alone that there is nothing to do.

All of this is pure: encoding and decoding, no storage calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from archiver.engine.units import day_unit, unit_day
from archiver.engine.versions import Rank

LEDGER_ROOT = "_archiver/units/"
WATERMARK_ROOT = "_archiver/complete/"
HEAD_NAME = "head.json"
SEEN_PREFIX = "seen-"
FORMAT_VERSION = 1

OUTCOME_JOB = "job"
OUTCOME_SUPERSEDED = "superseded"
OUTCOME_ACTIVITY = "activity"
OUTCOME_QUARANTINE = "quarantine"


def watermark_key(day: dt.date) -> str:
    """Marks that a complete run (no window, no unit filter, nothing unread) covered the source to `day`."""
    return f"{WATERMARK_ROOT}{day_unit(day)}"


def unit_prefix(unit: str) -> str:
    return f"{LEDGER_ROOT}{unit}/"


def head_key(unit: str) -> str:
    return f"{unit_prefix(unit)}{HEAD_NAME}"


def seen_key(unit: str, fingerprint: str) -> str:
    return f"{unit_prefix(unit)}{SEEN_PREFIX}{fingerprint}"


def file_owner(unit: str) -> str:
    """The prefix of the data-file names a unit owns, e.g. `d20240820` or `loose`."""
    day = unit_day(unit)
    return f"d{day:%Y%m%d}" if day else unit


@dataclass(frozen=True, slots=True)
class FileRef:
    """One data file of a unit."""

    key: str
    table: str
    rows: int
    bytes: int


@dataclass(slots=True)
class Head:
    """The committed state of a unit."""

    unit: str
    generation: int = 0
    index_key: str | None = None
    files: list[FileRef] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)

    def file_keys(self) -> set[str]:
        return {ref.key for ref in self.files}


@dataclass(slots=True)
class IndexEntry:
    """One source object the unit holds, identified by (key, ETag)."""

    key: str
    etag: str
    size: int
    outcome: str
    job_id: str | None = None
    day: dt.date | None = None
    rank: Rank | None = None
    files: tuple[str, ...] = ()


def encode_head(head: Head) -> bytes:
    return orjson.dumps(
        {
            "format": FORMAT_VERSION,
            "unit": head.unit,
            "generation": head.generation,
            "index": head.index_key,
            "files": [
                {"key": ref.key, "table": ref.table, "rows": ref.rows, "bytes": ref.bytes}
                for ref in head.files
            ],
            "obsolete": head.obsolete,
        },
        option=orjson.OPT_INDENT_2,
    )


def decode_head(data: bytes) -> Head:
    raw = orjson.loads(data)
    if raw.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported ledger format {raw.get('format')!r}")
    return Head(
        unit=raw["unit"],
        generation=int(raw["generation"]),
        index_key=raw.get("index"),
        files=[FileRef(f["key"], f["table"], int(f["rows"]), int(f["bytes"])) for f in raw.get("files", [])],
        obsolete=list(raw.get("obsolete", [])),
    )


INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("etag", pa.string()),
        ("size", pa.int64()),
        ("outcome", pa.string()),
        ("job_id", pa.string()),
        ("day", pa.date32()),
        ("terminal", pa.bool_()),
        ("completed_us", pa.int64()),
        ("stamp_us", pa.int64()),
        ("modified_us", pa.int64()),
        ("files", pa.list_(pa.string())),
    ]
)


def encode_index(entries: Iterable[IndexEntry]) -> bytes:
    """The source index as zstd Parquet, sorted by key."""
    ordered = sorted(entries, key=lambda entry: (entry.key, entry.job_id or ""))
    ranks = [entry.rank for entry in ordered]
    table = pa.Table.from_arrays(
        [
            pa.array([e.key for e in ordered], pa.string()),
            pa.array([e.etag for e in ordered], pa.string()),
            pa.array([e.size for e in ordered], pa.int64()),
            pa.array([e.outcome for e in ordered], pa.string()),
            pa.array([e.job_id for e in ordered], pa.string()),
            pa.array([e.day for e in ordered], pa.date32()),
            pa.array([r.terminal if r else None for r in ranks], pa.bool_()),
            pa.array([r.completed_us if r else None for r in ranks], pa.int64()),
            pa.array([r.stamp_us if r else None for r in ranks], pa.int64()),
            pa.array([r.modified_us if r else None for r in ranks], pa.int64()),
            pa.array([list(e.files) for e in ordered], pa.list_(pa.string())),
        ],
        schema=INDEX_SCHEMA,
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def decode_index(data: bytes) -> list[IndexEntry]:
    table = pq.read_table(io.BytesIO(data))
    columns = {name: table.column(name).to_pylist() for name in INDEX_SCHEMA.names}
    entries: list[IndexEntry] = []
    for i, key in enumerate(columns["key"]):
        terminal = columns["terminal"][i]
        rank = (
            None
            if terminal is None
            else Rank(
                terminal, columns["completed_us"][i], columns["stamp_us"][i], columns["modified_us"][i], key
            )
        )
        entries.append(
            IndexEntry(
                key=key,
                etag=columns["etag"][i],
                size=columns["size"][i],
                outcome=columns["outcome"][i],
                job_id=columns["job_id"][i],
                day=columns["day"][i],
                rank=rank,
                files=tuple(columns["files"][i] or ()),
            )
        )
    return entries


def listing_fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """A digest of (key, ETag) pairs in key order: equal digests mean equal listings."""
    digest = hashlib.sha256()
    for key, etag in pairs:
        digest.update(key.encode())
        digest.update(b"\0")
        digest.update(etag.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]
