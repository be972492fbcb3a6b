"""Ids stay lossless: a job id the key holds exactly wins over a body that lost digits, and says so."""

from __future__ import annotations

import pathlib

import orjson
import pytest

from archiver.formats.layout import parse_key
from archiver.formats.normalize import read_object

CASES = pathlib.Path(__file__).parents[2] / "cases"
ETAG = '"0123456789abcdef"'
BIG_ID = "123456789012345678901"  # 21 digits: beyond 64 bits, so orjson reads it as a float
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
def test_a_21_digit_job_id_in_the_body_keeps_every_digit_from_the_key(key: str) -> None:
    # GIVEN a job whose body id is a 21-digit number, stored under a key that names the same job
    data = job_with_id(BIG_ID.encode())
    # WHEN it is read
    parsed = read_object(data, key=key, etag=ETAG, key_info=parse_key(key))
    # THEN the job, its row and its lines carry the key's exact id, not the float's digits
    assert parsed.rejection is None, parsed.rejection
    (state,) = parsed.jobs
    assert state.job_id == BIG_ID
    assert state.row["job_id"] == BIG_ID
    assert state.lines and {line["job_id"] for line in state.lines} == {BIG_ID}
    # AND the disagreement is noted, naming both ids, so the run report can count it
    assert len(parsed.notes) == 1
    note = parsed.notes[0]
    assert BIG_ID in note and "key kept" in note and "float" in note
    assert "e+" not in note and "e20" not in note


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
        # Beyond 2**53 a float holds ~17 digits: those, zero-filled, not its binary expansion
        (BIG_ID.encode(), "123456789012345680000"),
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
