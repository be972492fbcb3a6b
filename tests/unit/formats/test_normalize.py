from __future__ import annotations

import contextlib
import datetime as dt
import pathlib
import re
from typing import Any

import orjson
import pyarrow as pa
import pytest

from archiver.formats.layout import parse_key
from archiver.formats.normalize import read_object
from archiver.formats.records import (
    REASON_EMPTY,
    REASON_INVALID_JSON,
    REASON_INVALID_UTF8,
    REASON_MISSING_FIELD,
    REASON_TRUNCATED,
    REASON_UNRECOGNIZED,
    ParsedObject,
    Rejection,
)
from archiver.formats.schema import ACTIVITY, JOB_LINES, JOBS

CASES = pathlib.Path(__file__).parents[2] / "cases"
ALL_CASES = sorted(path.name for path in CASES.glob("*.json"))
ETAG = '"0123456789abcdef"'


def key_of(name: str) -> str:
    return f"streams/{name}"


def read(name: str, *, key: str | None = None) -> ParsedObject:
    """Read a case file the way the pipeline does: bytes, key, etag, parsed key."""
    key = key or key_of(name)
    return read_object((CASES / name).read_bytes(), key=key, etag=ETAG, key_info=parse_key(key))


def read_bytes(data: bytes) -> ParsedObject:
    return read_object(data, key="streams/x.json", etag=ETAG, key_info=None)


def only_job(parsed: ParsedObject) -> Any:
    assert parsed.rejection is None, parsed.rejection
    assert parsed.activity == []
    assert len(parsed.jobs) == 1
    return parsed.jobs[0]


def only_event(parsed: ParsedObject) -> Any:
    assert parsed.rejection is None, parsed.rejection
    assert parsed.jobs == []
    assert len(parsed.activity) == 1
    return parsed.activity[0]


def rejection_of(parsed: ParsedObject) -> Rejection:
    assert parsed.jobs == [] and parsed.activity == []
    assert parsed.rejection is not None
    return parsed.rejection


_VALUE_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(?!\s*:)')  # a string that is not a key
_NUMBER = re.compile(r"\d{5,}")


def payload_tokens(data: bytes) -> set[str]:
    """Every value (not key) in a payload long enough to recognise in a message.

    Works on broken JSON too: values are found in the text, escaped and unescaped.
    """
    text = data.decode("utf-8", errors="replace")
    tokens = set(_NUMBER.findall(text))
    for raw in _VALUE_STRING.findall(text):
        tokens.add(raw)
        with contextlib.suppress(orjson.JSONDecodeError):
            tokens.add(orjson.loads(f'"{raw}"'))
    return {token for token in tokens if len(token) >= 5}


def assert_no_payload_in(detail: str, data: bytes) -> None:
    leaked = sorted(token for token in payload_tokens(data) if token in detail)
    assert leaked == [], f"detail leaks payload values: {leaked}"


# --- every case -------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_CASES)
def test_every_case_gives_rows_with_exactly_the_schema_columns(name: str) -> None:
    # GIVEN any case file
    # WHEN it is read
    parsed = read(name)
    # THEN it is rows (or, for the invalid sample only, a rejection) ...
    if name == "job_history_summary_invalid.json":
        assert rejection_of(parsed).reason == REASON_INVALID_JSON
        return
    assert parsed.rejection is None, parsed.rejection
    assert parsed.jobs or parsed.activity
    # ... whose dicts have exactly the schema's columns, and which Arrow accepts as typed
    for job in parsed.jobs:
        assert list(job.row) == JOBS.names
        assert all(list(line) == JOB_LINES.names for line in job.lines)
        assert job.row["source_key"] == key_of(name) and job.row["source_etag"] == ETAG
        pa.Table.from_pylist([job.row], schema=JOBS)
        pa.Table.from_pylist(job.lines, schema=JOB_LINES)
    for event in parsed.activity:
        assert list(event.row) == ACTIVITY.names
        assert event.row["source_key"] == key_of(name) and event.row["source_etag"] == ETAG
        pa.Table.from_pylist([event.row], schema=ACTIVITY)


@pytest.mark.parametrize("name", ALL_CASES)
def test_no_damaged_copy_of_a_case_makes_read_object_raise(name: str) -> None:
    # GIVEN a case file cut short at many places, and with bytes flipped
    data = (CASES / name).read_bytes()
    damaged = [data[:cut] for cut in range(0, len(data), max(1, len(data) // 40))]
    damaged += [data[:at] + b"\xff" + data[at + 1 :] for at in range(0, len(data), max(1, len(data) // 10))]
    damaged += [data.replace(b'"', b"'", 1), data.replace(b":", b"", 1)]
    for variant in damaged:
        # WHEN it is read
        parsed = read_object(variant, key=key_of(name), etag=ETAG, key_info=None)
        # THEN it is a normal result: rows, or a rejection that leaks nothing
        if parsed.rejection is not None:
            assert parsed.jobs == [] and parsed.activity == []
            assert_no_payload_in(parsed.rejection.detail, variant)


# --- jobs -------------------------------------------------------------------------


def test_job_history_success() -> None:
    # GIVEN the job history success sample, outside the key layout
    # WHEN it is read
    job = only_job(read("job_history_success.json"))
    row = job.row
    # THEN the job columns are read from the bare job object
    assert job.job_id == row["job_id"] == "j-AEcaNzd9-dGQ4Bf"
    assert job.day == dt.date(2022, 10, 20)  # UTC date of started_at
    assert row["user_id"] == "33359"  # context.user_id
    assert row["recipe_id"] == "3026581"
    assert row["recipe_name"] == "Update customer contact details"
    assert row["recipe_path"] == "Home/Functions"
    assert row["status"] == "succeeded"
    assert row["started_at"] == 1666243846000000
    assert row["completed_at"] == 1666243846000000
    assert row["job_created_at"] == 1666243846084655
    assert row["master_job_id"] == "j-AEcaNXb8-KWAmEL"
    assert row["parent_job_id"] == "j-AEcaNXb8-KWAmEL"
    assert row["calling_job_id"] == "j-AEcaNXWz-Yhzrct"
    assert row["calling_recipe_id"] == "3026585"
    assert row["is_repeat"] is True
    assert row["repeat_count"] == 1
    assert row["is_test"] is False
    assert row["action_count"] == 2
    assert row["environment_type"] == "dev"
    assert row["environment_id"] == "33359"
    assert row["account_id"] == "33359"
    assert row["account_name"] == "Gabriel Sim"
    assert row["user_name"] == "Gabriel Sim"
    assert row["stream_type"] == "job_history"
    assert row["report"] == b"{}"
    for column in ("error_type", "error_message", "error_id", "error_adapter", "error_action"):
        assert row[column] is None
    assert row["error_line_number"] is None and row["error_at"] is None and row["error_raw"] is None
    assert row["lines_truncated"] is False
    assert row["line_count"] == 3
    # AND one line row per step, in order
    lines = job.lines
    assert [line["line_index"] for line in lines] == [0, 1, 2]
    assert [line["recipe_line_number"] for line in lines] == [0, 1, 2]
    assert [line["adapter_name"] for line in lines] == [
        "workato_recipe_function",
        "logger",
        "workato_recipe_function",
    ]
    assert [line["adapter_operation"] for line in lines] == ["execute", "log_message", "return_result"]
    assert [line["masked"] for line in lines] == [False, False, False]
    assert [line["duration_s"] for line in lines] == [
        0.00043684104457497597,
        0.0006231747101992369,
        0.00041800527833402157,
    ]
    assert [line["error"] for line in lines] == [None, None, None]
    assert orjson.loads(lines[1]["input"]) == {
        "user_logs_enabled": "false",
        "message": "2d02d10dj28\nJohn Doe",
    }
    assert orjson.loads(lines[2]["input"]) == {"result": None}
    assert lines[2]["output"] == b"{}"
    assert {line["job_id"] for line in lines} == {"j-AEcaNzd9-dGQ4Bf"}
    assert {line["source_key"] for line in lines} == {key_of("job_history_success.json")}
    assert {line["source_etag"] for line in lines} == {ETAG}


def test_a_key_in_the_layout_decides_user_and_day() -> None:
    # GIVEN the success sample stored under a layout key of another workspace and day
    key = "1234/jobs/456/20221019/j-AEcaNzd9-dGQ4Bf/1234-456-j-AEcaNzd9-dGQ4Bf-20221019223046-succeeded.json"
    # WHEN it is read with that key
    job = only_job(read("job_history_success.json", key=key))
    # THEN the key's workspace and date win; the object's recipe id still comes first
    assert job.row["user_id"] == "1234"
    assert job.day == dt.date(2022, 10, 19)
    assert job.row["recipe_id"] == "3026581"
    assert job.row["source_key"] == key


def test_job_history_failure_fills_every_error_column() -> None:
    # GIVEN the job history failure sample, whose error is a JSON-encoded string
    data = (CASES / "job_history_failure.json").read_bytes()
    # WHEN it is read
    job = only_job(read("job_history_failure.json"))
    row = job.row
    # THEN the error string is unpacked into the error columns
    assert row["job_id"] == "j-AEcaQsxm-Ec4PRe"
    assert row["status"] == "failed"
    assert row["started_at"] == 1666244009000000
    assert row["completed_at"] == 1666244009000000
    assert row["error_type"] == "Bad data sent to API server"
    assert row["error_id"] == "7859dd09-bf6d-4d47-a55b-e84049cdafe2"
    assert row["error_adapter"] == "salesforce"
    assert row["error_action"] == "create_custom_object"
    assert row["error_line_number"] == 2
    assert row["error_message"] == "Invalid Salesforce ID value(s) for: AccountId"
    assert row["error_inner_message"] is None
    assert row["error_at"] == 1666244009643000
    assert row["error_raw"] == orjson.loads(data)["error"]
    assert row["parent_job_id"] == "j-AEcaNzd9-dGQ4Bf"
    assert row["repeat_count"] == 2
    assert row["action_count"] == 0
    assert row["line_count"] == 2 and row["lines_truncated"] is False
    # AND the failing step keeps its error text
    assert job.lines[1]["error"] == "Invalid Salesforce ID value(s) for: AccountId"
    assert job.lines[1]["duration_s"] == 0.07894168607890606
    assert job.lines[0]["error"] is None


def test_the_invalid_summary_sample_is_rejected_as_invalid_json_without_leaking() -> None:
    # GIVEN the summary sample with its `"account_id": 0000000`
    data = (CASES / "job_history_summary_invalid.json").read_bytes()
    # WHEN it is read
    rejection = rejection_of(read("job_history_summary_invalid.json"))
    # THEN it is invalid JSON, with the parser's message and position but no values
    assert rejection.reason == REASON_INVALID_JSON
    assert "leading zero" in rejection.detail
    assert "line 21" in rejection.detail
    assert_no_payload_in(rejection.detail, data)
    assert "0000000" not in rejection.detail


def test_job_summary_carries_no_lines() -> None:
    # GIVEN the summary sample with valid numbers
    # WHEN it is read
    job = only_job(read("job_history_summary_fixed.json"))
    row = job.row
    # THEN it is a summary: no line information at all
    assert row["stream_type"] == "job_summary"
    assert row["job_id"] == "job-123456789"
    assert row["user_id"] == "7654321"  # context.user_id
    assert row["recipe_id"] == "35428227"
    assert row["status"] == "succeeded"
    assert row["started_at"] == 1703275738000000
    assert row["completed_at"] == 1703275739000000
    assert row["parent_job_id"] is None  # parent_id null, no child_job_id in the URL
    assert row["calling_job_id"] == "job-987654321"
    assert row["lines_truncated"] is None and row["line_count"] is None
    assert job.lines == []
    assert job.day == dt.date(2023, 12, 22)


def test_job_status_only() -> None:
    # GIVEN the job status sample: string ids, a wrapper UserID, report columns
    # WHEN it is read
    job = only_job(read("job_status_only.json"))
    row = job.row
    # THEN ids stay lossless strings and the wrapper's user id is used
    assert row["stream_type"] == "job_status"
    assert row["job_id"] == "job-000001"
    assert row["user_id"] == "12345"  # envelope UserID before context.user_id
    assert row["recipe_id"] == "98765"  # recipe_id before flow_id "12345-flow"
    assert row["environment_id"] == "12345-env"
    assert row["account_id"] == "67890"
    assert row["master_job_id"] == "master-job-000001"
    assert row["parent_job_id"] == "master-job-000001"  # context.parent_job_id
    assert row["calling_job_id"] is None and row["calling_recipe_id"] is None
    assert row["status"] == "succeeded"
    assert row["started_at"] == 1710201751000000
    assert row["completed_at"] == 1710201752000000
    assert job.day == dt.date(2024, 3, 12)  # 17:02 at -07:00 is the next day in UTC
    assert row["error_message"] is None
    assert row["lines_truncated"] is None and row["line_count"] is None
    # AND the report keeps its keys in the order given
    assert row["report"] == (
        b'{"custom_column_0":"2024-03-11T20:56:44.000Z","custom_column_1":"Some Text",'
        b'"custom_column_2":"2024-03-13T17:02:32.631Z","custom_column_3":"test:2024-03-11T21:01:44.621606-03:00"}'
    )


def test_job_details_uses_the_log_object_not_its_broken_string_copy() -> None:
    # GIVEN the full job details sample (its Log_Str does not parse)
    # WHEN it is read
    job = only_job(read("job_details.json"))
    row = job.row
    # THEN the Log object is archived with its lines
    assert row["stream_type"] == "job_details"
    assert row["job_id"] == "j-1234ABC"
    assert row["user_id"] == "12345"
    assert row["recipe_id"] == "654321"
    assert row["status"] == "succeeded"
    assert row["started_at"] == 1694081235000000
    assert row["completed_at"] == 1694081235000000
    assert row["master_job_id"] == "j-5678DEF"
    assert row["parent_job_id"] is None  # its job_url names no child
    assert row["job_created_at"] is None  # not carried since September 2024
    assert row["error_type"] is None and row["error_message"] is None
    assert row["line_count"] == 2 and row["lines_truncated"] is False
    assert [line["adapter_name"] for line in job.lines] == ["clock", "logger"]
    assert [line["duration_s"] for line in job.lines] == [None, None]  # no line_stat
    assert [line["masked"] for line in job.lines] == [False, False]
    assert job.day == dt.date(2023, 9, 7)


def test_an_oversized_job_keeps_its_row_and_marks_lines_truncated() -> None:
    # GIVEN full job details whose lines are "Log lines exceed size limit"
    # WHEN it is read
    job = only_job(read("job_details_oversized.json"))
    # THEN the job row is there, flagged, without line rows
    assert job.row["job_id"] == "j-1234BIG"
    assert job.row["lines_truncated"] is True
    assert job.row["line_count"] == 0
    assert job.row["recipe_name"] == "Data processing task"
    assert job.lines == []


def test_an_error_that_is_not_json_is_kept_as_the_message() -> None:
    # GIVEN a job whose error is plain text, with booleans and counts as strings
    # WHEN it is read
    job = only_job(read("job_history_error_not_json.json"))
    row = job.row
    # THEN the text is the message and the other error parts are empty
    text = "Net::ReadTimeout with #<TCPSocket:(closed)>"
    assert row["error_message"] == text
    assert row["error_raw"] == text
    assert row["error_type"] == "Timeout"
    for column in (
        "error_id",
        "error_adapter",
        "error_action",
        "error_line_number",
        "error_at",
        "error_inner_message",
    ):
        assert row[column] is None
    # AND string booleans and numbers are read as such
    assert row["is_repeat"] is False
    assert row["is_test"] is True
    assert row["repeat_count"] == 0
    assert row["action_count"] == 3
    assert row["started_at"] == 1710176551000000
    assert row["report"] == b'{"custom_column_1":"order-42","custom_column_0":"2024-03-11"}'
    # AND masked steps, structured step errors and plain durations come through
    masked, failed = job.lines
    assert masked["masked"] is True
    assert masked["input"] == b'{"data":"masked"}'
    assert failed["masked"] is False
    assert failed["error"] == '{"message":"Net::ReadTimeout"}'
    assert failed["output"] is None
    assert failed["duration_s"] == 30.0


def test_masked_input_alone_marks_a_step_masked() -> None:
    # GIVEN a step with mask_data false but a masked input
    job = orjson.loads((CASES / "job_history_success.json").read_bytes())
    job["lines"][0]["input"] = {"data": "masked"}
    job["lines"][1]["mask_data"] = "true"
    # WHEN it is read
    parsed = read_bytes(orjson.dumps(job))
    # THEN both are masked and the third is not
    assert [line["masked"] for line in only_job(parsed).lines] == [True, True, False]


def test_an_already_parsed_error_object_is_read_like_the_string() -> None:
    # GIVEN the failure sample with its error given as an object
    job = orjson.loads((CASES / "job_history_failure.json").read_bytes())
    as_string = job["error"]
    job["error"] = orjson.loads(as_string)
    job["error_type"] = None
    # WHEN it is read
    row = only_job(read_bytes(orjson.dumps(job))).row
    # THEN the columns match, and error_type falls back to the parsed one
    assert row["error_type"] == "Bad data sent to API server"
    assert row["error_line_number"] == 2
    assert row["error_id"] == "7859dd09-bf6d-4d47-a55b-e84049cdafe2"
    assert orjson.loads(row["error_raw"]) == orjson.loads(as_string)


# Columns the September 2024 format cannot carry, and the stream metadata.
NEW_FORMAT_CANNOT_CARRY = {"job_created_at"}
LINE_COLUMNS_NEW_FORMAT_CANNOT_CARRY = {"duration_s"}
STREAM_METADATA = {"source_key", "source_etag"}


def test_old_and_new_full_job_details_give_the_same_rows() -> None:
    # GIVEN the same failed child job as full job details before and after September 2024
    # WHEN both are read
    old = only_job(read("job_details_old_format.json"))
    new = only_job(read("job_details_new_format.json"))
    # THEN every column both formats can carry is equal
    skip = NEW_FORMAT_CANNOT_CARRY | STREAM_METADATA
    assert {k: v for k, v in old.row.items() if k not in skip} == {
        k: v for k, v in new.row.items() if k not in skip
    }
    assert old.day == new.day == dt.date(2022, 10, 20)
    # AND what was restored is restored, and what cannot be is null only in the new one
    assert new.row["parent_job_id"] == old.row["parent_job_id"] == "j-AEcaNzd9-dGQ4Bf"  # from job_url
    assert new.row["master_job_id"] == "j-AEcaNXb8-KWAmEL"
    assert new.row["is_repeat"] is True and new.row["repeat_count"] == 2
    assert old.row["job_created_at"] == 1666244009354481
    assert new.row["job_created_at"] is None
    # AND the lines match except the timings the new format dropped
    line_skip = LINE_COLUMNS_NEW_FORMAT_CANNOT_CARRY | STREAM_METADATA
    assert [{k: v for k, v in line.items() if k not in line_skip} for line in old.lines] == [
        {k: v for k, v in line.items() if k not in line_skip} for line in new.lines
    ]
    assert [line["duration_s"] for line in new.lines] == [None, None]
    assert [line["duration_s"] for line in old.lines] == [0.00029799481853842735, 0.07894168607890606]


def test_the_old_format_reads_the_same_as_the_job_history_sample() -> None:
    # GIVEN the failure job as bare job history and as old-format full job details
    history = only_job(read("job_history_failure.json"))
    details = only_job(read("job_details_old_format.json"))
    # THEN only the stream type and the metadata differ
    skip = STREAM_METADATA | {"stream_type"}
    assert {k: v for k, v in history.row.items() if k not in skip} == {
        k: v for k, v in details.row.items() if k not in skip
    }


def test_a_job_read_from_its_string_copy_equals_the_object() -> None:
    # GIVEN full job details with only the Log_Str copy, and the same with the Log object
    from_string = only_job(read("job_details_log_str_only.json"))
    from_object = only_job(read("job_details_new_format.json"))
    # THEN the rows are the same
    assert {k: v for k, v in from_string.row.items() if k not in STREAM_METADATA} == {
        k: v for k, v in from_object.row.items() if k not in STREAM_METADATA
    }


def test_a_parent_is_only_restored_from_a_url_that_names_this_job_as_child() -> None:
    # GIVEN new-format jobs whose job_url names another child, or no child
    document = orjson.loads((CASES / "job_details_new_format.json").read_bytes())
    log = document["Log"]
    log["job_url"] = "https://app.workato.com/recipes/3026581/job/j-AEcaNzd9-dGQ4Bf?child_job_id=j-OTHER"
    other_child = only_job(read_bytes(orjson.dumps(document))).row
    log["job_url"] = "https://app.workato.com/recipes/3026581/job/j-AEcaQsxm-Ec4PRe"
    no_child = only_job(read_bytes(orjson.dumps(document))).row
    # THEN no parent is invented
    assert other_child["parent_job_id"] is None
    assert no_child["parent_job_id"] is None


def test_numeric_ids_become_strings_and_bools_never_become_ids() -> None:
    # GIVEN a job with a numeric id, a boolean master id and a float recipe id
    job = orjson.loads((CASES / "job_history_success.json").read_bytes())
    job["id"] = 98765
    job["master_job_id"] = True
    job["context"]["master_job_id"] = False
    job["recipe_id"] = 3026581.0
    job["environment_id"] = "12345-env"
    # WHEN it is read
    row = only_job(read_bytes(orjson.dumps(job))).row
    # THEN
    assert row["job_id"] == "98765"
    assert row["master_job_id"] is None
    assert row["recipe_id"] == "3026581"
    assert row["environment_id"] == "12345-env"


def test_job_id_falls_back_to_context_then_key() -> None:
    # GIVEN a job with no top-level id
    job = orjson.loads((CASES / "job_history_success.json").read_bytes())
    del job["id"]
    data = orjson.dumps(job)
    # WHEN it is read without and with a layout key and without context.job_id
    from_context = only_job(read_bytes(data)).row
    del job["context"]["job_id"]
    data = orjson.dumps(job)
    key = "1234/jobs/456/20221019/j-FROMKEY/1234-456-j-FROMKEY-20221019-succeeded.json"
    from_key = only_job(read_object(data, key=key, etag=ETAG, key_info=parse_key(key))).row
    # THEN context.job_id, then the key's job id is used
    assert from_context["job_id"] == "j-AEcaNzd9-dGQ4Bf"
    assert from_key["job_id"] == "j-FROMKEY"
    assert from_key["lines_truncated"] is False


def test_a_job_without_any_id_is_rejected_as_missing_field() -> None:
    # GIVEN a job with neither id nor context.job_id, outside the layout
    job = orjson.loads((CASES / "job_status_only.json").read_bytes())
    del job["log"]["id"]
    del job["log"]["context"]["job_id"]
    data = orjson.dumps(job)
    # WHEN it is read
    rejection = rejection_of(read_bytes(data))
    # THEN it is a missing field, named, with no values
    assert rejection.reason == REASON_MISSING_FIELD
    assert "id" in rejection.detail
    assert_no_payload_in(rejection.detail, data)


def test_a_job_without_any_date_is_rejected_and_the_envelope_time_is_a_fallback() -> None:
    # GIVEN a bare job with no started_at or completed_at, and the same in a details wrapper
    document = orjson.loads((CASES / "job_details.json").read_bytes())
    job = document["Log"]
    del job["started_at"]
    del job["completed_at"]
    bare = orjson.dumps(job)
    wrapped = orjson.dumps(document)
    # WHEN both are read
    rejection = rejection_of(read_bytes(bare))
    dated = only_job(read_bytes(wrapped))
    # THEN the bare one has no date; the wrapped one takes the envelope's Time_micro
    assert rejection.reason == REASON_MISSING_FIELD
    assert "date" in rejection.detail
    assert_no_payload_in(rejection.detail, bare)
    assert dated.day == dt.date(2023, 9, 7)
    assert dated.row["started_at"] is None


# --- activity ---------------------------------------------------------------------

ACTIVITY_CASES = [
    # file, event, category, occurred_at, user_id, team_id, resource type, id and name, ip, stream
    ("user_login.json", "user_login", "account", 1588387162000000, "4848", "4848", "User", "4848", "John Smith", "60.160.90.91", "activity_event"),  # noqa: E501
    ("user_logout.json", "user_logout", "account", 1588387150000000, "4848", "4848", "User", "4848", "John Smith", "60.160.90.91", "activity_event"),  # noqa: E501
    ("manifest_updated.json", "manifest_updated", "package", 1588387906000000, "4848", "4848", "ExportManifest", "911", "Document reading", "60.160.90.91", "activity_event"),  # noqa: E501
    ("package_exported.json", "package_exported", "package", 1588387937000000, "4848", "4805", "Package", "1076", "vision-ai-license-and-registration_john-smith.zip", None, "activity_event"),  # noqa: E501
    ("package_imported.json", "package_imported", "package", 1588388013000000, "4848", "4848", "Package", "1077", "griddynamics_demo.zip", None, "activity_event"),  # noqa: E501
    ("recipe_created.json", "recipe_created", "recipe", 1588388012000000, "4848", "4848", "Flow", "33167", "Candidate in Progress on JIRA will advance on GreenHouse", None, "activity_event"),  # noqa: E501
    ("recipe_updated.json", "recipe_updated", "recipe", 1588616788000000, "4848", "4848", "Flow", "32896", "Trigger on a specified interval will send request via HTTP", "60.160.90.91", "activity_event"),  # noqa: E501
    ("recipe_deleted.json", "recipe_deleted", "recipe", 1588617555000000, "4848", "4848", "Flow", "33179", "Send opportunity sync request via HTTP", "60.160.90.91", "activity_event"),  # noqa: E501
    ("recipe_cloned.json", "recipe_copied", "recipe", 1588617163000000, "4848", "4848", "Flow", "32896", "Trigger on a specified interval will send request via HTTP", "60.160.90.91", "activity_event"),  # noqa: E501
    ("recipe_renamed.json", "recipe_renamed", "recipe", 1588617203000000, "4848", "4848", "Flow", "33179", "Send opportunity sync request via HTTP", "60.160.90.91", "activity_event"),  # noqa: E501
    ("recipe_started.json", "recipe_started", "recipe", 1588617526000000, "4848", "4848", "Flow", "33179", "Send opportunity sync request via HTTP", "67.164.97.88", "activity_event"),  # noqa: E501
    ("recipe_stopped.json", "recipe_stopped", "recipe", 1588617546000000, "4848", "4848", "Flow", "33179", "Send opportunity sync request via HTTP", "60.160.90.91", "activity_event"),  # noqa: E501
    ("folder_created.json", "folder_created", "folder", 1588618088000000, "4848", "4848", "Folder", "6847", "RevOps Salesforce <> Netsuite", "60.160.90.91", "activity_event"),  # noqa: E501
    ("folder_deleted.json", "folder_deleted", "folder", 1588618220000000, "4848", "4848", "Folder", "6847", "RevOps Salesforce <> Netsuite", "60.160.90.91", "activity_event"),  # noqa: E501
    ("team_invitation_created.json", "team_invitation_created", "team", 1588618439000000, "4848", "4848", "MemberInvitation", "847", "Alice Jackson", "60.160.90.91", "activity_event"),  # noqa: E501
    ("team_invitation_accept.json", "team_invitation_accept", "team", 1588622702000000, "6464", "4848", "MemberInvitation", "847", "Alice Jackson", "60.160.90.91", "activity_event"),  # noqa: E501
    ("team_membership_deleted.json", "team_membership_deleted", "team", 1588618396000000, "4848", "4848", "ManagedUserGrant", "1483", None, "60.160.90.91", "activity_event"),  # noqa: E501
    ("team_switched.json", "user_login", "account", 1588624053000000, "6464", "4848", "User", "4848", "John Smith", "60.160.90.91", "activity_event"),  # noqa: E501
    ("team_switched_out.json", "user_logout", "account", 1588624081000000, "6464", "4848", "User", "4848", "John Smith", "60.160.90.91", "activity_event"),  # noqa: E501
    ("connection_connected.json", "connection_connected", "connection", 1588625795000000, "4848", "4848", "SharedAccount", "7145", "My PostgreSQL account", "60.160.90.91", "activity_event"),  # noqa: E501
    ("connection_disconnected.json", "connection_disconnected", "connection", 1588625784000000, "4848", "4848", "SharedAccount", "7145", "My PostgreSQL account", "60.160.90.91", "activity_event"),  # noqa: E501
    ("connection_created.json", "connection_created", "connection", 1588629598000000, "4848", "4848", "SharedAccount", "7174", "My second Asana account", "60.160.90.91", "activity_event"),  # noqa: E501
    ("connection_updated.json", "connection_updated", "connection", 1588625792000000, "4848", "4848", "SharedAccount", "7145", "My PostgreSQL account", "60.160.90.91", "activity_event"),  # noqa: E501
    ("connection_deleted.json", "connection_deleted", "connection", 1588625841000000, "4848", "4848", "SharedAccount", "6588", "Carly's Greenhouse Account", "60.160.90.91", "activity_event"),  # noqa: E501
    ("connector_updated.json", "connector_updated", "connector", 1588388008000000, "4848", "4848", "Adapter", "1884", "Greenhouse", None, "activity_event"),  # noqa: E501
    ("user_activity.json", "recipe_stopped", "recipe", 1710201993000000, "99999", "55555", "Flow", "123456", "Sample Logger", None, "user_activity"),  # noqa: E501
    ("user_activity_string_only.json", "recipe_stopped", "recipe", 1710201993000000, "99999", "55555", "Flow", "123456", "Sample Logger", None, "user_activity"),  # noqa: E501
    ("log_message_str_recipe_started.json", "recipe_started", "recipe", 1685687453000000, "1234567", "1234567", "Flow", "16983123", "Cat Fact Generator", "76.100.203.123", "user_activity"),  # noqa: E501
    ("activity_api_record.json", "connector_released", "connector_sdk", 1766052820000000, "2100003309", "2100003309", "CustomAdapter", "108", "CustomerSupport", "183.83.147.66", "activity_api"),  # noqa: E501
    ("project_deployment.json", "project_deployed", "deployment", 1674343898000000, None, "123456", "Deployment", "123456", "HR projects", None, "project_deployment"),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    (
        "name",
        "event",
        "category",
        "occurred_at",
        "user_id",
        "team_id",
        "resource_type",
        "resource_id",
        "resource_name",
        "ip_address",
        "stream_type",
    ),
    ACTIVITY_CASES,
)
def test_activity_case(
    name: str,
    event: str,
    category: str,
    occurred_at: int,
    user_id: str | None,
    team_id: str,
    resource_type: str,
    resource_id: str,
    resource_name: str | None,
    ip_address: str | None,
    stream_type: str,
) -> None:
    # GIVEN an activity sample
    # WHEN it is read
    activity = only_event(read(name))
    row = activity.row
    # THEN the event columns hold the sample's values
    assert row["event"] == event
    assert row["category"] == category
    assert row["occurred_at"] == occurred_at
    assert row["user_id"] == user_id
    assert row["team_id"] == team_id
    assert row["resource_type"] == resource_type
    assert row["resource_id"] == resource_id
    assert row["resource_name"] == resource_name
    assert row["ip_address"] == ip_address
    assert row["stream_type"] == stream_type
    assert activity.day == dt.datetime.fromtimestamp(occurred_at / 1e6, dt.UTC).date()
    assert row["event_id"] is None or re.fullmatch(r"\d+", row["event_id"])


def test_user_login_columns() -> None:
    # GIVEN the user login sample
    # WHEN it is read
    row = only_event(read("user_login.json")).row
    # THEN names, the request and the details are kept
    assert row["user_name"] == "John Smith"
    assert row["user_email"] == "[email protected]"
    assert row["team_name"] == "Workato Team"
    assert row["user_agent"].startswith("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_3)")
    assert orjson.loads(row["details"])["sso_provider"] == "google"
    assert row["environment_type"] is None


def test_user_activity_prefers_the_log_object() -> None:
    # GIVEN the user activity sample (its string copy has other names)
    # WHEN it is read
    row = only_event(read("user_activity.json")).row
    # THEN the object's values are archived
    assert row["user_name"] == "Taylor Cruz"
    assert row["team_name"] == "Operations team"
    assert row["environment_type"] == "dev"
    assert row["resource_path"] == "Home/Example Path"
    assert row["details"] == b'{"error":false,"stop_reason":"user"}'
    assert row["user_agent"] is None


def test_activity_api_record_uses_its_id_and_workspace() -> None:
    # GIVEN a record of GET /api/activity_logs
    # WHEN it is read
    row = only_event(read("activity_api_record.json")).row
    # THEN its own id is the event id and the workspace is the team
    assert row["event_id"] == "656541"
    assert row["team_name"] == "ACME Inc's workspace"
    assert row["environment_type"] == "dev"
    assert row["user_email"] == "john.doe+workato@monad.com"


def test_project_deployment_keeps_the_rest_of_its_flat_keys_as_details() -> None:
    # GIVEN the flat project deployment sample
    # WHEN it is read
    row = only_event(read("project_deployment.json")).row
    # THEN the mapped keys are columns and every other key is in details
    assert row["user_name"] == "Workato Root"
    assert row["team_name"] == "ACME"
    assert row["environment_type"] == "dev"
    assert orjson.loads(row["details"]) == {
        "user_environment_id": 123456,
        "user_account_id": 123456,
        "user_account_name": "Workato Root",
        "team_email": "[email protected]",
        "team_environment_id": 123456,
        "team_environment_type": "dev",
        "team_account_id": 123456,
        "team_account_name": "Workato Root",
        "resource_target_environment": "Production",
        "resource_performed_by": "Workato Root",
    }


def test_top_level_keys_without_a_column_are_kept_in_details() -> None:
    # GIVEN the recipe renamed sample, whose old name is in resource_changes
    # WHEN it is read
    row = only_event(read("recipe_renamed.json")).row
    # THEN details holds the details and the resource changes
    details = orjson.loads(row["details"])
    assert details["resource_changes"] == {"name": {"old_value": "Send request via HTTP"}}
    assert details["request"]["ip_address"] == "60.160.90.91"


def test_stream_events_carry_no_invented_event_id() -> None:
    # GIVEN two events in one custom wrapper (the stream's copies carry no Workato id)
    first = read("custom_wrapper_log_entries.json")
    # WHEN their ids are read
    ids = [event.row["event_id"] for event in first.activity]
    # THEN event_id is empty: it is Workato's id where an event carries one, never made up
    assert [event.row["event"] for event in first.activity] == ["recipe_started", "recipe_stopped"]
    assert ids == [None, None]
    assert {event.row["stream_type"] for event in first.activity} == {"user_activity"}


def test_an_event_without_a_usable_timestamp_is_rejected() -> None:
    # GIVEN an event with no timestamp, and one with an unreadable timestamp
    event = orjson.loads((CASES / "user_login.json").read_bytes())
    event["timestamp"] = "the day after SECRET-TOMORROW"
    unreadable = orjson.dumps(event)
    del event["timestamp"]
    missing = orjson.dumps(event)
    # WHEN they are read
    # THEN both are missing fields, and the value is not repeated
    for data in (unreadable, missing):
        rejection = rejection_of(read_bytes(data))
        assert rejection.reason == REASON_MISSING_FIELD
        assert "timestamp" in rejection.detail
        assert_no_payload_in(rejection.detail, data)


def test_one_bad_event_in_a_list_rejects_the_whole_object_and_says_which() -> None:
    # GIVEN a wrapper whose second event has no timestamp
    document = orjson.loads((CASES / "custom_wrapper_log_entries.json").read_bytes())
    del document["logEntries"][1]["timestamp"]
    data = orjson.dumps(document)
    # WHEN it is read
    rejection = rejection_of(read_bytes(data))
    # THEN the object is quarantined whole, naming the body
    assert rejection.reason == REASON_MISSING_FIELD
    assert "body 2 of 2" in rejection.detail
    assert_no_payload_in(rejection.detail, data)


# --- rejections -------------------------------------------------------------------

SECRET = "SECRET-PAYLOAD-VALUE-42"
SUCCESS = (CASES / "job_history_success.json").read_bytes()

REJECTED = [
    ("empty", b"", REASON_EMPTY),
    ("whitespace", b"  \n\t\r\n ", REASON_EMPTY),
    ("truncated job", SUCCESS[: len(SUCCESS) // 2], REASON_TRUNCATED),
    ("truncated in a string", b'{"id": "' + SECRET.encode(), REASON_TRUNCATED),
    ("not JSON", b"hello " + SECRET.encode(), REASON_INVALID_JSON),
    ("trailing garbage", b'{"a": "' + SECRET.encode() + b'"} trailing', REASON_INVALID_JSON),
    ("invalid UTF-8", b'{"name": "caf\xe9 ' + SECRET.encode() + b'"}', REASON_INVALID_UTF8),
    ("a JSON number", b"42", REASON_UNRECOGNIZED),
    ("a JSON string", b'"' + SECRET.encode() + b'"', REASON_UNRECOGNIZED),
    ("a list of junk", b'[1, "' + SECRET.encode() + b'", {"a": "junk"}, null]', REASON_UNRECOGNIZED),
    ("an unrecognised object", b'{"hello": "' + SECRET.encode() + b'", "n": 123456789}', REASON_UNRECOGNIZED),
    ("null", b"null", REASON_UNRECOGNIZED),
]  # fmt: skip


@pytest.mark.parametrize(("label", "data", "reason"), REJECTED, ids=[case[0] for case in REJECTED])
def test_bad_objects_get_the_right_reason_and_a_detail_without_values(
    label: str, data: bytes, reason: str
) -> None:
    # GIVEN an object that cannot be archived
    # WHEN it is read
    rejection = rejection_of(read_bytes(data))
    # THEN its reason is the stable code, and its detail is short and names no value
    assert rejection.reason == reason
    assert rejection.detail
    assert len(rejection.detail) < 200
    assert SECRET not in rejection.detail
    assert_no_payload_in(rejection.detail, data)


def test_truncation_and_invalid_json_say_where() -> None:
    # GIVEN a cut-short job and a broken one
    truncated = rejection_of(read_bytes(SUCCESS[:100]))
    invalid = rejection_of(read_bytes(b'{"a": 1,, "b": 2}'))
    # THEN both details give the position
    assert "char" in truncated.detail and "line" in truncated.detail
    assert "char 8" in invalid.detail


def test_invalid_utf8_names_the_byte() -> None:
    # GIVEN invalid UTF-8 at byte 13
    data = b'{"name": "caf\xe9"}'
    # WHEN it is read
    rejection = rejection_of(read_bytes(data))
    # THEN the detail names the position
    assert rejection.reason == REASON_INVALID_UTF8
    assert "byte 13" in rejection.detail


def test_a_cut_inside_a_multibyte_character_is_truncation() -> None:
    # GIVEN an object cut in the middle of a two-byte character
    data = '{"name": "café'.encode()[:-1]
    # WHEN it is read
    rejection = rejection_of(read_bytes(data))
    # THEN it is truncated, not invalid UTF-8
    assert rejection.reason == REASON_TRUNCATED


def test_a_byte_order_mark_is_tolerated() -> None:
    # GIVEN a job with a UTF-8 byte order mark
    # WHEN it is read
    job = only_job(read_bytes(b"\xef\xbb\xbf" + SUCCESS))
    # THEN it is read as usual
    assert job.job_id == "j-AEcaNzd9-dGQ4Bf"
