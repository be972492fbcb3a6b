"""Erasing one person from rows: what names them (at any depth, inside JSON strings, hashed or not),
what is left alone, and that erasing twice changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pyarrow as pa
import pytest

from archiver.errors import ConfigError
from archiver.formats.erasure import EMAIL, USER_ID, Erasure, subject_of
from archiver.formats.masking import EMAIL_MARK, hash_text
from archiver.formats.records import ActivityEvent, Contents, ParsedObject
from archiver.formats.schema import ACTIVITY

KEY = b"erasure key"
ADA, ADA_ID = "Ada.Lovelace@Example.com", "4242"
ERASE = Erasure(KEY, [subject_of(EMAIL, ADA, KEY), subject_of(USER_ID, ADA_ID, KEY)])
SCRUB = ERASE.scrubber(None)


def _payload(document: Any) -> Any:
    return orjson.loads(SCRUB.payload(orjson.dumps(document).decode()))


def test_their_email_is_hashed_whole_and_masked_in_text_at_any_depth_and_inside_json_strings() -> None:
    # GIVEN a payload naming them at depth, in free text, and inside a JSON string, beside someone else
    inner = orjson.dumps({"to": [ADA.lower()], "cc": "bob@example.com"}).decode()
    document = {
        "a": {"b": [{"email": ADA}]},
        "note": f"write to {ADA.upper()} or bob@example.com",
        "raw": inner,
    }
    # WHEN erased
    got = _payload(document)
    # THEN the whole value is their keyed hash, free text says [email] for theirs only, as inside the string
    assert got["a"]["b"][0]["email"] == hash_text(KEY, ADA)
    assert got["note"] == f"write to {EMAIL_MARK} or bob@example.com"
    assert orjson.loads(got["raw"]) == {"to": [hash_text(KEY, ADA.lower())], "cc": "bob@example.com"}
    # ... and erasing again changes nothing
    assert _payload(got) == got


def test_their_user_id_is_hashed_in_id_like_positions_only() -> None:
    # GIVEN their id as a user id, an owner id, a user object's id, and as the id of a recipe
    document = {"user_id": 4242, "ownerId": "4242", "user": {"id": 4242, "name": "x"}, "recipe": {"id": 4242}}
    # WHEN erased
    got = _payload(document)
    # THEN the person's positions hold the keyed hash, the recipe keeps its id
    hashed = hash_text(KEY, ADA_ID)
    assert (got["user_id"], got["ownerId"], got["user"]["id"]) == (hashed, hashed, hashed)
    assert got["recipe"] == {"id": 4242} and got["user"]["name"] == "x"


def test_text_that_does_not_name_them_keeps_its_exact_bytes() -> None:
    # GIVEN payloads with other people's e-mails and ids, spaced oddly
    for text in ('{"email": "bob@example.com",  "user_id": 7}', b'{"x": [1, 2]}', "plain text, no address"):
        # WHEN erased; THEN the very same value comes back
        assert SCRUB.payload(text) is text


def test_their_activity_rows_go_others_naming_them_are_scrubbed() -> None:
    # GIVEN activity rows: theirs by id, theirs by an e-mail a policy already hashed, and another's about them
    def row(**values: Any) -> dict[str, Any]:
        return {name: values.get(name) for name in ACTIVITY.names}

    rows = [
        row(event="login", user_id=ADA_ID, user_email="other@example.com"),
        row(event="login", user_id="1", user_email=hash_text(KEY, ADA.lower())),
        row(
            event="invite",
            user_id="2",
            user_email="eve@example.com",
            details=orjson.dumps({"email": ADA}).decode(),
        ),
        row(event="login", user_id="3", user_email="eve@example.com"),
    ]
    data = pa.Table.from_pylist(rows, schema=ACTIVITY)
    # WHEN the table is erased
    kept, gone, masked = ERASE.erase_table("activity", data, dt.date(2024, 8, 30))
    # THEN their two rows went, the row about them lost their address, the last one is untouched
    assert [r["user_id"] for r in gone] == [ADA_ID, "1"] and masked == 1
    assert kept.column("user_id").to_pylist() == ["2", "3"]
    assert orjson.loads(kept.column("details")[0].as_py()) == {"email": hash_text(KEY, ADA)}
    assert kept.slice(1).to_pylist() == data.slice(3).to_pylist()


def test_an_arriving_event_of_theirs_is_flagged_and_names_them_only_by_hash() -> None:
    # GIVEN an erasure of the days up to 2024-08-31, and two events of theirs, one of them later
    erasure = Erasure(KEY, [subject_of(EMAIL, ADA, KEY, until=dt.date(2024, 8, 31))])
    events = [
        ActivityEvent(dt.date(2024, 8, 30), {"user_id": "9", "user_email": ADA, "user_name": "Ada"}),
        ActivityEvent(dt.date(2024, 9, 1), {"user_id": "9", "user_email": ADA, "user_name": "Ada"}),
    ]
    # WHEN they are parsed
    erasure.erase_parsed(ParsedObject(Contents(activity=events)))
    # THEN the one in the window is flagged, its identifiers hashed; the later one is kept as it came
    assert events[0].erased and events[0].row == {
        name: hash_text(KEY, value)
        for name, value in (("user_id", "9"), ("user_email", ADA), ("user_name", "Ada"))
    }
    assert not events[1].erased and events[1].row["user_email"] == ADA


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (EMAIL, "nobody", "not an e-mail address"),
        (USER_ID, "  ", "user id is empty"),
        ("name", "x", "unknown"),
    ],
)
def test_an_identifier_that_cannot_be_one_is_a_one_line_error(kind: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        subject_of(kind, value, KEY)
