"""A policy applied to rows: every depth, arrays, JSON inside strings; untouched values keep their bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from archiver.formats.masking import CARD_MARK, EMAIL_MARK, PHONE_MARK, REDACTED, hash_text
from archiver.formats.normalize import read_object
from archiver.formats.policy import DEFAULT_POLICY, read_policy
from archiver.formats.redaction import redact_parsed, redact_payload, redact_row, redact_table
from archiver.formats.schema import JOB_LINES

KEY = b"policy key"
HEAVY = read_policy(
    """
[columns.jobs]
user_email = "hash"
title = "mask"
[payload.keys]
email = "hash"
[payload.paths]
"$.body.customer.*" = "mask"
"$..items[*].id" = "drop"
""",
    key=KEY,
)


def _echo() -> dict[str, Any]:
    """An HTTP step's output echoing secrets at depths 1 to 4, in a list, and in JSON inside strings."""
    grant = orjson.dumps({"refresh_token": "rt-1", "scope": "read"}).decode()
    return {
        "api_key": "ak-1",
        "headers": {"Authorization": "Bearer tok-1", "Accept": "json"},
        "body": {
            "customer": {
                "name": "Ann",
                "email": "ann@x.com",
                "phone": "+1 415-555-0134",
                "card": 4111111111111111,
            },
            "items": [{"id": 7, "label": "box"}],
            "session": {"keys": [{"password": "pw-1"}], "expires": 3600},
        },
        "raw": orjson.dumps({"login": {"client_secret": "cs-1", "grant": grant}, "ok": True}).decode(),
    }


def test_the_default_policy_redacts_secret_keys_at_every_depth_and_inside_json_strings() -> None:
    # GIVEN a payload echoing secrets at every depth, in a list, and in JSON inside JSON inside a string
    value = orjson.dumps(_echo())
    # WHEN the default policy applies
    result = redact_payload(DEFAULT_POLICY, "job_lines", "output", value)
    # THEN no secret survives, every one is redacted in place, and everything else is as it was
    assert isinstance(result, bytes)
    text = result.decode()
    assert not any(secret in text for secret in ("ak-1", "tok-1", "pw-1", "cs-1", "rt-1"))
    got = orjson.loads(result)
    assert got["api_key"] == got["headers"]["Authorization"] == REDACTED
    assert got["body"]["session"]["keys"][0]["password"] == REDACTED
    raw = orjson.loads(got["raw"])
    assert raw["login"]["client_secret"] == REDACTED
    assert orjson.loads(raw["login"]["grant"]) == {"refresh_token": REDACTED, "scope": "read"}
    assert got["body"]["customer"] == _echo()["body"]["customer"]
    assert got["headers"]["Accept"] == "json" and got["body"]["session"]["expires"] == 3600


def test_a_value_the_rules_do_not_touch_keeps_its_exact_bytes() -> None:
    value = b'{"b": 1, "a": [1, 2.50, "x"]}'
    assert redact_payload(DEFAULT_POLICY, "job_lines", "input", value) is value
    assert redact_payload(HEAVY, "job_lines", "input", value) is value


def test_key_and_path_rules_mask_hash_and_drop_what_they_name() -> None:
    # GIVEN the heavy policy (e-mail hashed by key, the customer masked by path, item ids dropped)
    got = orjson.loads(redact_payload(HEAVY, "job_lines", "output", orjson.dumps(_echo())))  # type: ignore[arg-type]
    # THEN paths come first (the customer's e-mail is masked), key rules reach JSON inside strings
    customer = got["body"]["customer"]
    assert customer == {"name": "Ann", "email": EMAIL_MARK, "phone": PHONE_MARK, "card": CARD_MARK}
    assert got["body"]["items"] == [{"id": None, "label": "box"}]
    assert got["api_key"] == REDACTED


def test_hashed_values_join_across_columns_and_tables() -> None:
    # GIVEN the same address in a job's user_email and in an activity payload
    job = {"user_email": "ann@x.com", "title": "for ann@x.com", "report": b'{"email": "ann@x.com"}'}
    job |= {"error_raw": None}
    redact_row(HEAVY, "jobs", job)
    details = redact_payload(HEAVY, "activity", "details", b'{"user": {"email": "ann@x.com"}}')
    # THEN both hold the same keyed hash, and the free-text title is masked
    expected = hash_text(KEY, "ann@x.com")
    assert job["user_email"] == expected
    assert orjson.loads(job["report"])["email"] == expected
    assert orjson.loads(details)["user"]["email"] == expected  # type: ignore[arg-type]
    assert job["title"] == f"for {EMAIL_MARK}"


def test_applying_a_policy_twice_changes_nothing() -> None:
    once = redact_payload(HEAVY, "job_lines", "output", orjson.dumps(_echo()))
    assert once is not None
    assert redact_payload(HEAVY, "job_lines", "output", once) == once


def test_plain_text_payloads_and_whole_column_rules() -> None:
    policy = read_policy('[columns.job_lines]\nerror = "mask"\ninput = "redact"\n')
    row = {"error": "401 for ann@x.com", "input": b'{"a": 1}', "output": b'{"password": "p"}'}
    redact_row(policy, "job_lines", row)
    assert row == {
        "error": f"401 for {EMAIL_MARK}",
        "input": REDACTED,
        "output": b'{"password":"[redacted]"}',
    }


def test_parsed_objects_and_arrow_tables_get_the_same_treatment() -> None:
    # GIVEN a job object whose line echoes a password, parsed, and the same line as an Arrow table
    body = {"id": 1, "recipe_id": 2, "status": "succeeded", "started_at": "2024-09-01T00:00:00Z"}
    body["lines"] = [{"input": {"password": "p", "n": 1}, "output": {}}]
    parsed = redact_parsed(
        DEFAULT_POLICY, read_object(orjson.dumps(body), key="k.json", etag="e", key_info=None)
    )
    line = parsed.jobs[0].lines[0]
    rows = [{name: line.get(name) for name in JOB_LINES.names}]
    rows[0]["input"] = '{"password":"p","n":1}'
    table = pa.Table.from_pylist(rows, schema=JOB_LINES)
    # THEN both hold the redacted password
    assert orjson.loads(line["input"]) == {"password": REDACTED, "n": 1}
    assert redact_table(DEFAULT_POLICY, "job_lines", table).column("input").to_pylist() == [
        '{"password":"[redacted]","n":1}'
    ]


def _job(lines: list[dict[str, Any]], **fields: Any) -> bytes:
    body = {"id": 1, "recipe_id": 2, "status": "failed", "started_at": "2024-09-01T00:00:00Z", **fields}
    return orjson.dumps({**body, "lines": lines})


def test_a_secret_key_spelled_with_the_kelvin_sign_is_redacted_like_its_ascii_twin() -> None:
    # GIVEN a payload key "toKen" whose K is the Kelvin sign (U+212A), which lower-cases to an ASCII "k"
    parsed = read_object(_job([{"output": {"to\u212aen": "tk-1"}}]), key="k.json", etag="e", key_info=None)
    # WHEN the default policy applies to the parsed object
    line = redact_parsed(DEFAULT_POLICY, parsed).jobs[0].lines[0]
    # THEN the key is a secret (as `is_secret_key` says) and its value is redacted
    assert orjson.loads(line["output"]) == {"to\u212aen": REDACTED}


def test_each_payload_value_of_an_object_is_tested_on_its_own_even_around_a_nul() -> None:
    # GIVEN an object whose error text holds a NUL, and secrets in the lines before and after it
    lines = [{"input": {"api_key": "ak-1"}}, {"error": "bad\x00byte", "output": {"n": 1}}]
    lines.append({"input": {"note": "pass"}, "output": {"password": "pw-1"}})
    parsed = read_object(_job(lines), key="k.json", etag="e", key_info=None)
    # WHEN the default policy applies
    rows = redact_parsed(DEFAULT_POLICY, parsed).jobs[0].lines
    # THEN both secrets are redacted and every other value keeps its bytes
    assert orjson.loads(rows[0]["input"]) == {"api_key": REDACTED}
    assert orjson.loads(rows[2]["output"]) == {"password": REDACTED}
    assert rows[1]["error"] == "bad\x00byte" and rows[2]["input"] == b'{"note":"pass"}'


def test_column_rules_that_replace_payloads_leave_the_others_to_the_payload_rules() -> None:
    # GIVEN a policy dropping one payload column and redacting another (empty here) whole
    policy = read_policy('[columns.job_lines]\ninput = "drop"\nerror = "redact"\n')
    lines = [{"input": {"a": 1}, "error": "", "output": {"n": 1}}, {"output": {"secret": "s-1"}}]
    parsed = read_object(_job(lines), key="k.json", etag="e", key_info=None)
    # WHEN it applies
    rows = redact_parsed(policy, parsed).jobs[0].lines
    # THEN the column rules replaced theirs, and the secret in the next line is still redacted
    assert rows[0]["input"] is None and rows[0]["error"] == REDACTED and rows[0]["output"] == b'{"n":1}'
    assert orjson.loads(rows[1]["output"]) == {"secret": REDACTED}
