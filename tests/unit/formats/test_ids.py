"""Ids stay lossless: every id keeps the digits its JSON number held; a key's job id wins over a body's."""

from __future__ import annotations

import pathlib
from typing import Any

import orjson
import pytest

from archiver.formats.layout import parse_key
from archiver.formats.normalize import read_object

CASES = pathlib.Path(__file__).parents[2] / "cases"
ETAG = '"0123456789abcdef"'
BIG_ID = "123456789012345678901"  # 21 digits: beyond 64 bits, so orjson reads it as a float
NEAR_ID = "123456789012345678902"  # the same float as BIG_ID: only the digits tell them apart
STANDARD_KEY = f"1234/jobs/456/20221019/{BIG_ID}/1234-456-{BIG_ID}-20221019223046-succeeded.json"
EMBEDDED_KEY = (
    "5234/jobs/234/20221019/"
    + "/".join(BIG_ID[i : i + 3] for i in range(0, 21, 3))
    + f"/5234-234-{BIG_ID}-20221019223046-succeeded.json"
)


def job_with_id(raw_id: bytes, *, context_id: bytes | None = None) -> bytes:
    """The success sample with its id (and context.job_id) replaced by raw JSON number text."""
    job = orjson.loads((CASES / "job_history_success.json").read_bytes())
    job["id"] = "@@ID@@"
    job["context"]["job_id"] = "@@CONTEXT_ID@@"
    body = orjson.dumps(job)
    body = body.replace(b'"@@ID@@"', raw_id)
    return body.replace(b'"@@CONTEXT_ID@@"', context_id if context_id is not None else raw_id)


@pytest.mark.parametrize("key", [STANDARD_KEY, EMBEDDED_KEY], ids=["standard", "embedded"])
def test_a_21_digit_job_id_in_the_body_is_read_exactly_and_agrees_with_the_key(key: str) -> None:
    # GIVEN a job whose body id is a 21-digit number, stored under a key that names the same job
    data = job_with_id(BIG_ID.encode())
    # WHEN it is read
    parsed = read_object(data, key=key, etag=ETAG, key_info=parse_key(key))
    # THEN the job, its row and its lines carry the exact id
    assert parsed.rejection is None, parsed.rejection
    (state,) = parsed.jobs
    assert state.job_id == BIG_ID
    assert state.row["job_id"] == BIG_ID
    assert state.lines and {line["job_id"] for line in state.lines} == {BIG_ID}
    # AND the body, read digit for digit, agrees with the key: nothing is noted
    assert parsed.notes == []


def test_a_21_digit_body_id_one_off_the_keys_is_noted_with_both_ids_exact() -> None:
    # GIVEN a body id that is the same float as the key's id but not the same number
    data = job_with_id(NEAR_ID.encode())
    # WHEN it is read
    parsed = read_object(data, key=STANDARD_KEY, etag=ETAG, key_info=parse_key(STANDARD_KEY))
    # THEN the key's id is kept, and the note names both ids digit for digit
    assert [state.job_id for state in parsed.jobs] == [BIG_ID]
    assert parsed.notes == [f"job id in body {NEAR_ID} differs from key {BIG_ID}; key kept"]


def test_a_body_id_that_agrees_with_the_key_leaves_no_note() -> None:
    # GIVEN a job whose numeric body id is exactly the key's
    key = "1234/jobs/456/20221019/98765/1234-456-98765-20221019223046-succeeded.json"
    data = job_with_id(b"98765")
    # WHEN it is read
    parsed = read_object(data, key=key, etag=ETAG, key_info=parse_key(key))
    # THEN the id is the same and nothing is noted
    assert [state.job_id for state in parsed.jobs] == ["98765"]
    assert parsed.notes == []


def test_a_key_that_names_another_job_wins_and_is_noted() -> None:
    # GIVEN the success sample (id j-AEcaNzd9-dGQ4Bf) stored under another job's folder
    key = "1234/jobs/456/20221019/j-FROMKEY/1234-456-j-FROMKEY-20221019223046-succeeded.json"
    data = (CASES / "job_history_success.json").read_bytes()
    # WHEN it is read
    parsed = read_object(data, key=key, etag=ETAG, key_info=parse_key(key))
    # THEN the key's job id is kept, and the note names both
    (state,) = parsed.jobs
    assert state.job_id == "j-FROMKEY"
    assert parsed.notes == ["job id in body j-AEcaNzd9-dGQ4Bf differs from key j-FROMKEY; key kept"]


def test_jobs_of_an_object_holding_several_keep_their_own_ids() -> None:
    # GIVEN two different jobs in one wrapper, stored under a layout key naming one of them
    job = orjson.loads((CASES / "job_history_success.json").read_bytes())
    other = {**job, "id": "j-OTHER", "context": {**job["context"], "job_id": "j-OTHER"}}
    data = orjson.dumps({"logEntries": [job, other]})
    key = "1234/jobs/456/20221019/j-AEcaNzd9-dGQ4Bf/1234-456-j-AEcaNzd9-dGQ4Bf-20221019-succeeded.json"
    # WHEN it is read
    parsed = read_object(data, key=key, etag=ETAG, key_info=parse_key(key))
    # THEN the key does not fold them into one job
    assert [state.job_id for state in parsed.jobs] == ["j-AEcaNzd9-dGQ4Bf", "j-OTHER"]
    assert parsed.notes == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"98765.0", "98765"),
        (b"1e16", "10000000000000000"),
        (b"9007199254740991.0", "9007199254740991"),
        (b"1.2345e20", "123450000000000000000"),
        # Beyond 2**53 a float holds ~17 digits: the digits are the document's, whatever its form
        (BIG_ID.encode(), BIG_ID),
        (NEAR_ID.encode(), NEAR_ID),
        (b"-" + BIG_ID.encode(), "-" + BIG_ID),
        (BIG_ID.encode() + b".0", BIG_ID),
        (b"1.23456789012345678901e20", BIG_ID),
        (b"1234567890123456789010E-1", BIG_ID),
        (b"12345678901234567.0", "12345678901234567"),
        (b"98765432109876543210", "98765432109876543210"),
    ],
)
def test_ids_that_arrive_as_floats_are_written_in_digits(raw: bytes, expected: str) -> None:
    # GIVEN a job outside the layout whose id is a JSON number read as a float
    data = job_with_id(raw)
    # WHEN it is read
    parsed = read_object(data, key="loose/job.json", etag=ETAG, key_info=None)
    # THEN its id is plain digits, never exponent form
    (state,) = parsed.jobs
    assert state.job_id == expected
    assert state.row["job_id"] == expected


# --------------------------------------------------------------------------- every id column


def big(column: int) -> str:
    """A 21-digit id of its own for each column, so no column can pass with another's digits."""
    return f"9876543210987654321{column:02d}"


FORMS = {
    "integer": lambda digits: digits,
    "point-zero": lambda digits: digits + ".0",
    "exponent": lambda digits: f"{digits[0]}.{digits[1:]}e{len(digits) - 1}",
}
"""The JSON number forms a whole number can take, as raw text."""


def with_numbers(template: dict[str, Any], numbers: dict[str, str]) -> bytes:
    """`template` as JSON, each "@@NAME@@" string replaced by the raw number text `numbers[NAME]`."""
    body = orjson.dumps(template)
    for name, text in numbers.items():
        body = body.replace(f'"@@{name}@@"'.encode(), text.encode())
    return body


@pytest.mark.parametrize("form", list(FORMS))
def test_every_id_column_of_a_job_keeps_every_digit(form: str) -> None:
    # GIVEN a job outside the layout whose every id column holds a 21-digit number, in one JSON form,
    # some at the top level, some only in its context, the error id inside the JSON-encoded error
    columns = [
        "job_id", "user_id", "recipe_id", "master_job_id", "parent_job_id", "calling_job_id",
        "calling_recipe_id", "environment_id", "account_id", "error_id",
    ]  # fmt: skip
    ids = {column: big(index) for index, column in enumerate(columns)}
    raw = {column: FORMS[form](digits) for column, digits in ids.items()}
    job = {
        "id": "@@job_id@@",
        "recipe_id": "@@recipe_id@@",
        "parent_id": "@@parent_job_id@@",
        "calling_job_id": "@@calling_job_id@@",
        "environment_id": "@@environment_id@@",
        "account_id": "@@account_id@@",
        "status": "failed",
        "started_at": "2024-08-20T09:00:00Z",
        "error": '{"error_id": "@@error_id@@", "message": "boom"}',
        "context": {
            "user_id": "@@user_id@@",
            "master_job_id": "@@master_job_id@@",
            "calling_recipe_id": "@@calling_recipe_id@@",
        },
        "lines": [{"input": {"n": 1}}],
    }
    data = with_numbers(job, raw).replace(b'\\"@@error_id@@\\"', raw["error_id"].encode())
    assert raw["error_id"].encode() in data and b"@@" not in data
    # WHEN it is read
    parsed = read_object(data, key="exports/job.json", etag=ETAG, key_info=None)
    # THEN every id column holds the document's digits
    (state,) = parsed.jobs
    assert {column: state.row[column] for column in columns} == ids
    # AND its lines name the job and its workspace exactly too
    assert [(line["user_id"], line["job_id"]) for line in state.lines] == [(ids["user_id"], ids["job_id"])]


@pytest.mark.parametrize("form", list(FORMS))
def test_every_id_column_of_an_activity_event_keeps_every_digit(form: str) -> None:
    # GIVEN a bare activity event whose ids are 21-digit numbers in one JSON form
    columns = ["event_id", "user_id", "team_id", "resource_id"]
    ids = {column: big(index) for index, column in enumerate(columns)}
    event = {
        "id": "@@event_id@@",
        "event": "recipe_started",
        "timestamp": "2024-08-20 18:38:46 UTC",
        "user": {"id": "@@user_id@@", "name": "A"},
        "team": {"id": "@@team_id@@", "name": "T"},
        "resource": {"id": "@@resource_id@@", "type": "Flow"},
        "details": {},
    }
    data = with_numbers(event, {column: FORMS[form](digits) for column, digits in ids.items()})
    # WHEN it is read
    parsed = read_object(data, key="events/e.json", etag=ETAG, key_info=None)
    # THEN every id column holds the document's digits
    (event_row,) = [event.row for event in parsed.activity]
    assert {column: event_row[column] for column in columns} == ids


def test_an_id_inside_a_json_string_copy_keeps_every_digit() -> None:
    # GIVEN a job-details object that holds its job only as a JSON string, with a 21-digit master job id
    job = {"id": "j-1", "recipe_id": 7, "master_job_id": "@@m@@", "status": "succeeded"}
    copy = with_numbers(job, {"m": BIG_ID})
    data = orjson.dumps({"source": "Workato", "Time_utc": 1724144400000, "Log_Str": copy.decode()})
    # WHEN it is read
    parsed = read_object(data, key="exports/details.json", etag=ETAG, key_info=None)
    # THEN the id has every digit
    (state,) = parsed.jobs
    assert state.row["master_job_id"] == BIG_ID


def test_big_numbers_in_payloads_are_written_the_same_whichever_way_the_ids_were_read() -> None:
    # GIVEN two jobs with the same payload holding a 21-digit number, one with a short id, one with a long
    payload = {"id": "@@id@@", "recipe_id": 7, "status": "succeeded", "started_at": "2024-08-20T09:00:00Z"}
    payload |= {"report": {"total": "@@n@@"}, "lines": [{"input": {"n": "@@n@@"}, "output": [1.5, "@@n@@"]}]}
    short = with_numbers(payload, {"id": "98765", "n": BIG_ID})
    long = with_numbers(payload, {"id": NEAR_ID, "n": BIG_ID})
    # WHEN both are read
    (one,) = read_object(short, key="a.json", etag=ETAG, key_info=None).jobs
    (other,) = read_object(long, key="b.json", etag=ETAG, key_info=None).jobs
    # THEN the ids differ as written, and the payload columns are the same bytes (orjson's float form)
    assert (one.job_id, other.job_id) == ("98765", NEAR_ID)
    assert one.row["report"] == other.row["report"] == orjson.dumps({"total": float(BIG_ID)})
    for column in ("input", "output"):
        assert one.lines[0][column] == other.lines[0][column]
