"""JSON numbers a float cannot hold, read exactly when an id needs them.

orjson reads an integer outside 64 bits, and any number written with a fraction or
an exponent, as a float. Past 2**53 floats skip integers, so the id
98765432109876543210 would come out as 98765432109876540000. The common path stays
orjson's: `float_id` raises `InexactNumberError` when an id column meets such a
float, and the reader parses that one object again with `load_exact`, whose numbers
past 2**53 are `ExactNumber`s: floats of the same value (so every other column reads
them exactly as it reads orjson's) that also carry the digits the document held.
"""

from __future__ import annotations

import decimal
import json

import orjson

from archiver.errors import ArchiverError

_EXACT_FLOAT = float(2**53)
"""Every integer of smaller magnitude is exactly one float; beyond it, floats skip integers."""
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
"""orjson reads integers in [_INT_MIN, _INT_MAX] as `int`, any other as a float."""


class InexactNumberError(ArchiverError):
    """An id arrived as a float that may have lost digits: read the object again with `load_exact`."""

    def __init__(self) -> None:
        super().__init__("an id is a JSON number beyond what a float holds exactly")


class ExactNumber(float):
    """A JSON number of magnitude 2**53 or more, as a float, with the whole number it names in digits.

    `digits` is None when the number has a fraction: it names no id.
    """

    __slots__ = ("digits",)
    digits: str | None

    def __new__(cls, value: float, digits: str | None) -> ExactNumber:
        number = super().__new__(cls, value)
        number.digits = digits
        return number


def load_exact(data: bytes | str) -> object:
    """Parse JSON as orjson does, except that numbers past 2**53 are `ExactNumber`s.

    Raises orjson's JSONDecodeError for whatever orjson refuses (NaN, lone surrogates),
    so both accept the same documents; on those they agree on everything else (strings,
    duplicate keys, integers within 64 bits, the float nearest to every number). May
    raise RecursionError for a document nested near orjson's depth limit.
    """
    orjson.loads(data)
    return json.loads(data, parse_int=_exact_int, parse_float=_exact_float)


def float_id(value: float) -> str | None:
    """An id read from a float: the whole number in digits, never in exponent form; None for a fraction.

    Raises `InexactNumberError` for a plain float of magnitude 2**53 or more: its digits
    may not be the document's, and only `load_exact` can tell.
    """
    if isinstance(value, ExactNumber):
        return value.digits
    if not value.is_integer():
        return None
    if -_EXACT_FLOAT < value < _EXACT_FLOAT:
        return str(int(value))
    raise InexactNumberError


def plain(value: object) -> float:
    """`default` for orjson.dumps: an `ExactNumber` inside a payload is written as the float it is."""
    if isinstance(value, ExactNumber):
        return float(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _exact_int(text: str) -> int | float:
    number = int(text)
    if _INT_MIN <= number <= _INT_MAX:
        return number
    return ExactNumber(float(text), text)


def _exact_float(text: str) -> float:
    value = float(text)
    if not value.is_integer() or -_EXACT_FLOAT < value < _EXACT_FLOAT:
        return value  # a fraction, an infinity, or an integer every float holds exactly
    number = decimal.Decimal(text)
    whole = number.to_integral_value()
    return ExactNumber(value, str(int(whole)) if whole == number else None)
