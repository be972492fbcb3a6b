from __future__ import annotations

import datetime as dt
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archiver.engine import ledger
from archiver.engine.ledger import (
    Child,
    FileRef,
    Head,
    IndexEntry,
    LedgerFormatError,
    Outcome,
    Retired,
    SegmentRef,
    absent_or_damaged,
    decode_head,
    encode_head,
    split_retired,
)
from archiver.engine.units import UNDATED, day_unit, unit_day
from archiver.engine.versions import rank_of


def test_head_roundtrip_keeps_range_children_segments_retired_and_lineage() -> None:
    # GIVEN a sealed child unit with everything a head can hold
    head = Head(
        unit="day=2024-08-20.1",
        generation=3,
        lo="5234/jobs/1/20240820/j-b/",
        hi="5234/jobs/1/20240820/j-m/",
        children=[Child("day=2024-08-20.1.0", "5234/jobs/1/20240820/j-b/")],
        segments=[SegmentRef("_archiver/units/day=2024-08-20.1/index-g000003-abcd.parquet", 12)],
        files=[FileRef("jobs/date=2024-08-20/d20240820.1-g000003-abcd-0000.parquet", "jobs", 10, 2048)],
        retired=[Retired("jobs/date=2024-08-20/old.parquet", 1_700_000_000_000_000)],
        lineage=["aaaa", "abcd"],
    )
    # WHEN it is encoded and decoded
    decoded = ledger.decode_head(ledger.encode_head(head))
    # THEN nothing is lost
    assert decoded == head
    assert decoded.sealed and decoded.held == 12


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"format": 1, "unit": "x"}',
        b'{"format": 2}',
        b'{"format": 2, "unit": 1, "generation": "x"}',
    ],
)
def test_a_malformed_head_is_a_ledger_format_error_that_quotes_nothing(body: bytes) -> None:
    with pytest.raises(LedgerFormatError) as raised:
        ledger.decode_head(body)
    assert "not json" not in str(raised.value)


def test_index_roundtrip_keeps_ranks_users_files_and_sorts_by_key() -> None:
    entries = [
        IndexEntry("b.json", "e2", 20, Outcome.ACTIVITY, files=("activity/x.parquet",)),
        IndexEntry(
            "a.json",
            "e1",
            10,
            Outcome.JOB,
            user_id="5234",
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
    assert decoded[0].job == ("5234", "j-1")


def test_a_malformed_segment_is_a_ledger_format_error() -> None:
    with pytest.raises(LedgerFormatError):
        ledger.decode_index(b"PAR1 but not parquet")


def test_a_segment_with_an_unknown_outcome_is_a_ledger_format_error() -> None:
    # GIVEN a segment whose outcome column holds a value this version does not know
    data = ledger.encode_index([IndexEntry("a.json", "e1", 10, Outcome.JOB)])
    table = pq.read_table(io.BytesIO(data))
    table = table.set_column(table.schema.get_field_index("outcome"), "outcome", pa.array(["archived"]))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    # WHEN it is decoded
    # THEN it is a LedgerFormatError, as any other malformed segment, not a bare ValueError
    with pytest.raises(LedgerFormatError, match="unknown outcome"):
        ledger.decode_index(sink.getvalue())


def test_fingerprint_changes_with_any_etag() -> None:
    base = ledger.listing_fingerprint([("a", "1"), ("b", "2")])
    assert base == ledger.listing_fingerprint([("a", "1"), ("b", "2")])
    assert base != ledger.listing_fingerprint([("a", "1"), ("b", "3")])
    assert base != ledger.listing_fingerprint([("a", "1")])


def test_units_owners_and_ledger_keys() -> None:
    unit = day_unit(dt.date(2024, 8, 20))
    assert unit == "day=2024-08-20"
    assert unit_day(unit) == dt.date(2024, 8, 20)
    assert unit_day(UNDATED) is None
    assert ledger.file_owner(unit) == "d20240820"
    assert ledger.file_owner(unit + ".3.1") == "d20240820.3.1"
    assert ledger.file_owner("loose=2024-08-20") == "l20240820"
    assert ledger.file_owner(UNDATED) == "lundated"
    assert ledger.head_key(unit) == "_archiver/units/day=2024-08-20/head.json"
    assert ledger.file_generation(ledger.intent_key(unit, 7, "abcd")) == 7
    assert ledger.file_generation(ledger.segment_key(unit, 12, "abcd")) == 12
    assert ledger.file_generation("_archiver/units/day=2024-08-20/head.json") is None


def test_files_a_listing_lacks_are_missing_and_files_of_another_size_are_damaged() -> None:
    # GIVEN files a head names, and a listing where one is gone, one is shorter and one is as written
    refs = [
        FileRef("jobs/date=2024-08-20/a.parquet", "jobs", 3, 1000),
        FileRef("jobs/date=2024-08-20/b.parquet", "jobs", 3, 1000),
        FileRef("jobs/date=2024-08-20/c.parquet", "jobs", 3, 1000),
    ]
    listed = {"jobs/date=2024-08-20/b.parquet": 500, "jobs/date=2024-08-20/c.parquet": 1000}
    # WHEN they are compared
    missing, damaged = absent_or_damaged(refs, listed)
    # THEN the gone one is missing, the shorter one damaged, the other fine
    assert missing == {"jobs/date=2024-08-20/a.parquet"}
    assert damaged == {"jobs/date=2024-08-20/b.parquet"}


def test_a_retired_files_published_mark_survives_the_head_and_old_heads_read_unmarked() -> None:
    # GIVEN a head with one retired file marked published and one not
    marked, unmarked = Retired("jobs/a.parquet", 1, published=True), Retired("jobs/b.parquet", 2)
    head = Head("day=2024-08-20", retired=[marked, unmarked])
    # WHEN it is encoded and decoded
    decoded = decode_head(encode_head(head))
    # THEN the marks are kept, and an unmarked entry is written as before the mark existed
    assert decoded.retired == head.retired
    assert b'"published"' in encode_head(head) and encode_head(head).count(b'"published"') == 1


@pytest.mark.parametrize("published_tables", [False, True])
def test_retired_files_are_due_after_the_grace_only_without_tables(published_tables: bool) -> None:
    # GIVEN one retired file past a 10-second grace and one inside it
    old, new = Retired("jobs/old.parquet", 0), Retired("jobs/new.parquet", 95_000_000)
    # WHEN they are split at 100 s
    kept, due = split_retired([old, new], 100_000_000, 10_000_000, published_tables=published_tables)
    # THEN without tables the old one is due; with tables none is (the publisher deletes them)
    assert (kept, due) == (([old, new], []) if published_tables else ([new], [old]))
