"""`load_exact` reads what orjson reads, except that numbers past 2**53 keep their digits."""

from __future__ import annotations

import pathlib

import orjson
import pytest

from archiver.formats.normalize import read_object
from archiver.formats.numbers import ExactNumber, InexactNumberError, float_id, load_exact
from archiver.formats.records import REASON_INVALID_VALUE

CASES = pathlib.Path(__file__).parents[2] / "cases"


@pytest.mark.parametrize("name", sorted(path.name for path in CASES.glob("*.json")))
def test_load_exact_reads_every_sample_as_orjson_does(name: str) -> None:
    data = (CASES / name).read_bytes()
    try:
        expected = orjson.loads(data)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            load_exact(data)
    else:
        assert load_exact(data) == expected


@pytest.mark.parametrize("text", [b"NaN", b"[Infinity]", b'"\\ud800"', b"[1,]", b"1e400"])
def test_load_exact_refuses_what_orjson_refuses(text: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        load_exact(text)


def test_numbers_past_2_53_are_floats_of_the_same_value_that_keep_their_digits() -> None:
    # GIVEN numbers below and past 2**53 and past 64 bits, whole and not
    document = load_exact(
        b"[9007199254740991, 18446744073709551615, 18446744073709551616, -9223372036854775809,"
        b" 1.5, 98765.0, 12345678901234567.0, 12345678901234567.5, 1e16]"
    )
    assert isinstance(document, list)
    # THEN integers within 64 bits and floats below 2**53 are what orjson gives
    assert [type(value) for value in document[:2]] == [int, int]
    assert [type(value) for value in document[4:6]] == [float, float]
    # AND the others are ExactNumbers equal to orjson's float, with the document's whole number or None
    exact = [document[2], document[3], *document[6:]]
    assert all(isinstance(value, ExactNumber) for value in exact)
    assert [float(value) for value in exact] == [
        float(18446744073709551616),
        float(-9223372036854775809),
        12345678901234567.0,
        12345678901234567.5,
        1e16,
    ]
    assert [float_id(value) for value in exact] == [
        "18446744073709551616", "-9223372036854775809", "12345678901234567", None, "10000000000000000"
    ]  # fmt: skip


def test_float_id_asks_for_an_exact_reading_only_past_2_53() -> None:
    assert float_id(98765.0) == "98765"
    assert float_id(-(2.0**53) + 1) == "-9007199254740991"
    assert float_id(1.5) is None
    assert float_id(float("inf")) is None
    with pytest.raises(InexactNumberError):
        float_id(2.0**53)
    with pytest.raises(InexactNumberError):
        float_id(1.2345678901234568e20)


def test_an_object_too_deep_to_read_exactly_is_quarantined_with_a_reason() -> None:
    # GIVEN a job with a 21-digit id and a payload nested deeper than Python's parser goes (orjson's goes on)
    data = (
        b'{"id": 123456789012345678901, "recipe_id": 7, "status": "succeeded", "started_at": "2024-08-20",'
        b' "report": ' + b"[" * 1010 + b"]" * 1010 + b"}"
    )
    orjson.loads(data)
    # WHEN it is read
    parsed = read_object(data, key="exports/deep.json", etag='"e"', key_info=None)
    # THEN it is quarantined whole, with a reason, rather than archived with a wrong id
    assert parsed.rejection is not None
    assert parsed.rejection.reason == REASON_INVALID_VALUE
    assert "2**53" in parsed.rejection.detail
