from __future__ import annotations

import datetime as dt

from archiver.engine import ledger
from archiver.engine.ledger import FileRef, Head, IndexEntry
from archiver.engine.units import LOOSE_UNIT, day_unit, unit_day
from archiver.engine.versions import rank_of


def test_head_roundtrip() -> None:
    head = Head(
        unit="day=2024-08-20",
        generation=3,
        index_key="_archiver/units/day=2024-08-20/index-g000003-abcd.parquet",
        files=[FileRef("jobs/date=2024-08-20/d20240820-g000003-abcd-0000.parquet", "jobs", 10, 2048)],
        obsolete=["jobs/date=2024-08-20/old.parquet"],
    )
    assert ledger.decode_head(ledger.encode_head(head)) == head


def test_index_roundtrip_keeps_ranks_files_and_sorts_by_key() -> None:
    entries = [
        IndexEntry("b.json", "e2", 20, ledger.OUTCOME_ACTIVITY, files=("activity/x.parquet",)),
        IndexEntry(
            "a.json",
            "e1",
            10,
            ledger.OUTCOME_JOB,
            job_id="j-1",
            day=dt.date(2024, 8, 20),
            rank=rank_of("succeeded", 5, None, 7, "a.json"),
            files=("jobs/x.parquet", "job_lines/y.parquet"),
        ),
    ]
    decoded = ledger.decode_index(ledger.encode_index(entries))
    assert [entry.key for entry in decoded] == ["a.json", "b.json"]
    assert decoded[0] == entries[1]
    assert decoded[1] == entries[0]


def test_fingerprint_changes_with_any_etag() -> None:
    base = ledger.listing_fingerprint([("a", "1"), ("b", "2")])
    assert base == ledger.listing_fingerprint([("a", "1"), ("b", "2")])
    assert base != ledger.listing_fingerprint([("a", "1"), ("b", "3")])
    assert base != ledger.listing_fingerprint([("a", "1")])


def test_units_and_owners() -> None:
    unit = day_unit(dt.date(2024, 8, 20))
    assert unit == "day=2024-08-20"
    assert unit_day(unit) == dt.date(2024, 8, 20)
    assert unit_day(LOOSE_UNIT) is None
    assert ledger.file_owner(unit) == "d20240820"
    assert ledger.head_key(unit) == "_archiver/units/day=2024-08-20/head.json"
