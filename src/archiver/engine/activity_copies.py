"""The copies of user-activity events a day's ledger records, and what a commit does to them.

Every copy of an event is recorded (an `ActivityEntry`): the stream can deliver an
event twice, and the activity API gives a third copy. Copies of one event share its
identity (`identity.py`) and its id (None until a copy carrying Workato's id joins).
Exactly one copy of each event is *kept*: its entry names the data file holding the
event's row; the others name none. Withdrawing a copy (its object was rewritten)
keeps the event while another copy exists: the row then stands for the best copy
left. A copy that was never recorded (segments written before copies were) simply
has no say.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.parquet as pq

from archiver.engine import ledger
from archiver.engine.identity import event_identity
from archiver.engine.ledger import LedgerFormatError
from archiver.formats.records import Row

API_SOURCE_PREFIX = "api:"


def copy_rank(source_key: str | None) -> tuple[int, str]:
    """Lower wins: an API copy (it carries Workato's id), then the smaller source key."""
    key = source_key or ""
    return (0 if key.startswith(API_SOURCE_PREFIX) else 1, key)


@dataclass(slots=True)
class ActivityEntry:
    """One copy of an event: its identity, the event's id, the copy's object, and (if kept) its file."""

    key: str
    event_id: str | None
    source_key: str
    source_etag: str | None
    file: str

    def same_event(self, event_id: str | None) -> bool:
        return self.event_id is None or event_id is None or self.event_id == event_id

    def is_copy(self, source_key: str, event_id: str | None) -> bool:
        """This copy, as a row from `source_key` with `event_id` (API copies share one source key)."""
        return self.source_key == source_key and (event_id is None or self.event_id in (None, event_id))


_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("event_id", pa.string()),
        ("source_key", pa.string()),
        ("source_etag", pa.string()),
        ("file", pa.string()),
    ]
)


def encode_entries(entries: Iterable[ActivityEntry], uploads: Iterable[str] = ()) -> bytes:
    """One activity segment, naming the data files its commit uploads."""
    ordered = sorted(entries, key=lambda e: (e.key, e.event_id or "", e.source_key))
    table = pa.Table.from_pydict(
        {name: [getattr(entry, name) for entry in ordered] for name in _SCHEMA.names}, schema=_SCHEMA
    )
    sink = io.BytesIO()
    pq.write_table(ledger.with_uploads(table, uploads), sink, compression="zstd")
    return sink.getvalue()


def decode_entries(data: bytes) -> list[ActivityEntry]:
    try:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        return [ActivityEntry(**row) for row in rows]
    except (pa.ArrowException, OSError, TypeError) as error:
        raise LedgerFormatError(f"malformed activity segment ({type(error).__name__})") from None


def live_copies(merged: Mapping[str, list[ActivityEntry]]) -> dict[str, list[ActivityEntry]]:
    """The recorded copies of each identity, merged from segments: kept or spare, never a tombstone."""
    live = {key: [entry for entry in entries if entry.source_key] for key, entries in merged.items()}
    return {key: entries for key, entries in live.items() if entries}


def tombstone(key: str) -> ActivityEntry:
    """An identity left with no copy: written so that older segments stop counting."""
    return ActivityEntry(key, None, "", None, "")


@dataclass(frozen=True, slots=True)
class Relabel:
    """The row stays (same event, same fields) but now stands for another copy of it."""

    source_key: str
    source_etag: str | None


Edits = dict[tuple[str, str | None], Relabel | None]
"""Per data file: the rows, by (identity, event id), to drop (None) or to relabel."""


def edit_rows(data: pa.Table, edits: Edits) -> pa.Table:
    """An activity file's rows after `edits`: dropped rows gone, relabelled rows naming their new copy."""
    rows = data.select(["event", "occurred_at", "user_id", "resource_type", "resource_id", "event_id"])
    keys: list[tuple[str, str | None]] = []
    for row in rows.to_pylist():
        occurred = row["occurred_at"]
        if isinstance(occurred, dt.datetime):
            row["occurred_at"] = int(occurred.timestamp()) * 1_000_000
        keys.append((event_identity(row), row["event_id"]))
    relabels = {key: edit for key, edit in edits.items() if edit is not None}
    if relabels:
        source_keys = data.column("source_key").to_pylist()
        etags = data.column("source_etag").to_pylist()
        for position, key in enumerate(keys):
            if (edit := relabels.get(key)) is not None:
                source_keys[position], etags[position] = edit.source_key, edit.source_etag
        for name, values in (("source_key", source_keys), ("source_etag", etags)):
            column = data.schema.get_field_index(name)
            data = data.set_column(column, data.schema.field(column), pa.array(values, pa.string()))
    dropped = {key for key, edit in edits.items() if edit is None}
    return data.filter(pa.array([key not in dropped for key in keys], pa.bool_())) if dropped else data


@dataclass(slots=True)
class Change:
    """What one commit to a day's ledger does: rows to write, file edits, the identities it touches."""

    index: Mapping[str, list[ActivityEntry]]
    rows: list[Row] = field(default_factory=list)
    edits: dict[str, Edits] = field(default_factory=lambda: defaultdict(dict))
    touched: dict[str, list[ActivityEntry]] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    """Events whose row was in a damaged file and that no copy could give back (see `plan_repair`)."""

    def view(self, key: str) -> list[ActivityEntry]:
        """The identity's copies as they stand, not to be edited."""
        return self.touched[key] if key in self.touched else self.index.get(key, [])

    def copies(self, key: str) -> list[ActivityEntry]:
        """The identity's copies, to edit: the change now touches it (entries are copied first)."""
        if key not in self.touched:
            self.touched[key] = [replace(entry) for entry in self.index.get(key, [])]
        return self.touched[key]

    def withdraw(self, key: str, copy: ActivityEntry) -> None:
        """Forget a copy; if it was the kept one, the row passes to the best copy left, or leaves."""
        copies = self.copies(key)
        copies.remove(copy)
        if not copy.file:
            return
        others = [e for e in copies if not e.file and e.event_id == copy.event_id]
        if not others:
            self.edits[copy.file][(key, copy.event_id)] = None
            return
        best = min(others, key=lambda e: copy_rank(e.source_key))
        self.edits[copy.file][(key, copy.event_id)] = Relabel(best.source_key, best.source_etag)
        best.file = copy.file

    def add(self, row: Row, new_file: str) -> None:
        """Record a copy: a new event, a better copy of a held one (its row replaces the old), or a spare."""
        key = event_identity(row)
        own_id, source_key = row.get("event_id"), str(row.get("source_key") or "")
        same = next((e for e in self.view(key) if e.is_copy(source_key, own_id)), None)
        if same is not None and same.source_etag == row.get("source_etag") and not self._outranks(key, same):
            return
        copies = self.copies(key)
        if same is not None:  # its object was rewritten and still holds the event
            self.withdraw(key, next(e for e in copies if e.is_copy(source_key, own_id)))
        entry = ActivityEntry(key, own_id, source_key, row.get("source_etag"), "")
        held = next((e for e in copies if e.file and e.same_event(own_id)), None)
        copies.append(entry)
        if held is None:
            entry.file = new_file
            self.rows.append(row)
        elif copy_rank(source_key) < copy_rank(held.source_key):
            self.edits[held.file][(key, held.event_id)] = None
            event_id = own_id or held.event_id
            for other in copies:
                if other.event_id == held.event_id:
                    other.event_id = event_id
            held.file, entry.file = "", new_file
            self.rows.append({**row, "event_id": event_id})
        else:
            entry.event_id = held.event_id

    def _outranks(self, key: str, spare: ActivityEntry) -> bool:
        """A copy not kept that beats the kept one (a repair rebuilt the row from a lesser copy)."""
        kept = next((e for e in self.view(key) if e.file and e.event_id == spare.event_id), None)
        return (
            kept is not None and not spare.file and copy_rank(spare.source_key) < copy_rank(kept.source_key)
        )

    def added(self) -> int:
        """Events new to the ledger (a better copy of a held event adds none)."""
        return sum(
            max(0, _kept(copies) - _kept(self.index.get(key, []))) for key, copies in self.touched.items()
        )


def _kept(copies: Iterable[ActivityEntry]) -> int:
    return sum(1 for entry in copies if entry.file)


Withdrawn = Sequence[tuple[str, str]]
"""(source key, identity) of events a source object no longer holds (it was rewritten)."""


def plan_change(
    index: Mapping[str, list[ActivityEntry]], rows: Sequence[Row], new_file: str, withdrawn: Withdrawn = ()
) -> Change:
    """Withdraw the copies rewritten objects gave before, then record every copy in `rows`, best first."""
    change = Change(index)
    for source_key, key in withdrawn:
        if any(e.source_key == source_key for e in change.view(key)):
            for copy in [e for e in change.copies(key) if e.source_key == source_key]:
                change.withdraw(key, copy)
    for row in sorted(rows, key=lambda r: copy_rank(r.get("source_key"))):
        change.add(row, new_file)
    return change


Rereads = Mapping[str, list[Row] | None]
"""Source key -> the activity rows its object holds now (None: the object is gone)."""


def copies_to_reread(index: Mapping[str, list[ActivityEntry]], damaged: set[str]) -> list[str]:
    """The stream objects holding a copy of an event whose row was in a damaged file."""
    keys: set[str] = set()
    for entries in index.values():
        for kept in (e for e in entries if e.file in damaged):
            keys.update(
                e.source_key
                for e in entries
                if e.event_id == kept.event_id and not e.source_key.startswith(API_SOURCE_PREFIX)
            )
    return sorted(keys)


def plan_repair(
    index: Mapping[str, list[ActivityEntry]], damaged: set[str], rereads: Rereads, new_file: str
) -> Change:
    """Rows the damaged files held, rebuilt from the best copy of each event that can be read again.

    An event no copy can give back (its copies are API copies, or objects gone) is
    forgotten, so a later pull or delivery of it is new, and named in `lost`.
    """
    change = Change(index)
    for key in sorted(key for key, entries in index.items() if any(e.file in damaged for e in entries)):
        copies = change.copies(key)
        for kept in [e for e in copies if e.file in damaged]:
            group = sorted((e for e in copies if e.event_id == kept.event_id), key=_rank)
            for entry in group:
                entry.file = ""
            found = next(((e, row) for e in group if (row := _reread(e, rereads)) is not None), None)
            if found is None:
                change.lost.extend(_name(entry) for entry in group)
                gone = {id(e) for e in group}
                copies[:] = [e for e in copies if id(e) not in gone]
                continue
            entry, row = found
            entry.file, entry.source_etag = new_file, row.get("source_etag")
            change.rows.append({**row, "event_id": kept.event_id})
    return change


def _rank(entry: ActivityEntry) -> tuple[int, str]:
    return copy_rank(entry.source_key)


def _reread(copy: ActivityEntry, rereads: Rereads) -> Row | None:
    """The copy's row as its object holds it now, if it still holds the event."""
    for row in rereads.get(copy.source_key) or ():
        if event_identity(row) == copy.key and copy.same_event(row.get("event_id")):
            return row
    return None


def _name(entry: ActivityEntry) -> str:
    """How a report names a copy: its object, or for an API copy, the API path and Workato's id."""
    if entry.source_key.startswith(API_SOURCE_PREFIX):
        return f"{entry.source_key}#{entry.event_id}"
    return entry.source_key
