"""The value types say what they mean: row TypedDicts match the schemas, enums are the stored strings."""

from __future__ import annotations

import datetime as dt
import io
import typing

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archiver.formats import schema
from archiver.formats.envelopes import ACTIVITY_STREAMS, JOB_STREAMS, StreamType
from archiver.formats.layout import KeyLayout
from archiver.formats.records import (
    ActivityRow,
    Contents,
    JobLineRow,
    JobRow,
    JobState,
    ParsedObject,
    QuarantineRow,
    Reason,
    Rejection,
)


@pytest.mark.parametrize(
    ("row_type", "table"),
    [
        (JobRow, schema.JOBS),
        (JobLineRow, schema.JOB_LINES),
        (ActivityRow, schema.ACTIVITY),
        (QuarantineRow, schema.QUARANTINE),
    ],
    ids=["jobs", "job_lines", "activity", "quarantine"],
)
def test_each_row_type_has_exactly_its_tables_columns_in_order(row_type: type, table: pa.Schema) -> None:
    # GIVEN a table's row TypedDict and its Arrow schema
    # WHEN their column names are compared
    columns = list(typing.get_type_hints(row_type))
    # THEN they are the same, in the same order
    assert columns == table.names


def test_enums_are_the_strings_the_contract_documents() -> None:
    # GIVEN the fixed string sets
    # WHEN their values are listed
    # THEN they are the stable codes written to the archive
    assert {reason.value for reason in Reason} == {
        "empty", "invalid_json", "truncated", "invalid_utf8",
        "unrecognized", "too_large", "missing_field", "invalid_value",
    }  # fmt: skip
    assert {stream.value for stream in JOB_STREAMS} == {
        "job_history",
        "job_summary",
        "job_status",
        "job_details",
    }
    assert {stream.value for stream in ACTIVITY_STREAMS} == {
        "user_activity", "activity_event", "project_deployment", "activity_api",
    }  # fmt: skip
    assert set(StreamType) == JOB_STREAMS | ACTIVITY_STREAMS
    assert {layout.value for layout in KeyLayout} == {"standard", "embedded"}
    # AND each member is equal to, and hashes like, its plain string
    assert Reason.TOO_LARGE == "too_large" and "too_large" in {Reason.TOO_LARGE}
    assert StreamType.JOB_DETAILS == "job_details" and f"{StreamType.JOB_DETAILS}" == "job_details"


def test_enum_values_are_written_to_parquet_as_plain_strings() -> None:
    # GIVEN a quarantine row and a jobs column holding enum members
    rows = [{"source_key": "k", "source_etag": "e", "size": 1, "reason": Reason.INVALID_JSON, "detail": "d"}]
    # WHEN they go through Arrow and Parquet
    table = pa.Table.from_pylist(rows, schema=schema.QUARANTINE)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    back = pq.read_table(io.BytesIO(buffer.getvalue()))
    streams = pa.array([StreamType.JOB_HISTORY, StreamType.ACTIVITY_API], pa.string())
    # THEN the stored values are the plain codes
    assert back.column("reason").to_pylist() == ["invalid_json"]
    assert type(back.column("reason").to_pylist()[0]) is str
    assert streams.to_pylist() == ["job_history", "activity_api"]


def test_a_parsed_object_is_either_contents_or_a_rejection() -> None:
    # GIVEN a rejected object and one with a job
    rejection = Rejection(Reason.EMPTY, "the object is empty")
    state = JobState(job_id="j-1", day=dt.date(2024, 1, 1), row={"job_id": "j-1"}, notes=["a note"])
    rejected = ParsedObject(rejection=rejection)
    archived = ParsedObject(Contents(jobs=[state]))
    # WHEN their parts are read
    # THEN the rejected one has no jobs, no activity and no notes, and the other no rejection
    assert rejected.outcome == rejection and rejected.rejection == rejection
    assert rejected.jobs == [] and rejected.activity == [] and rejected.notes == []
    assert archived.rejection is None and archived.jobs == [state] and archived.notes == ["a note"]
    assert ParsedObject(rejection) == rejected


def test_a_parsed_object_cannot_be_both_or_neither() -> None:
    # GIVEN a rejection and some contents
    rejection = Rejection(Reason.EMPTY, "the object is empty")
    # WHEN a parsed object is made of both, or of nothing
    # THEN that is refused
    with pytest.raises(TypeError):
        ParsedObject(Contents(), rejection=rejection)
    with pytest.raises(TypeError):
        ParsedObject()
