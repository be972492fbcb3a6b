"""Read every timestamp form Workato writes as UTC epoch microseconds.

The streams mix ISO 8601 with offsets (with or without fractions, `Z`), Ruby's
`Time#to_s` (`2019-11-24 14:29:30 -0800`), `... UTC`, a form with both an offset
and a zone abbreviation (`2023-09-07 02:07:15.979 -0800 AKDT`), naive ISO (taken
as UTC) and epoch integers in seconds, milliseconds, microseconds or
nanoseconds. Rows store integers, so the writer never has to guess a zone and
nothing is lost to float rounding. This runs for every row: the common forms take
one `datetime.fromisoformat` call, a regular expression is only the fallback.
"""

from __future__ import annotations

import datetime as dt
import math
import re

_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_ONE_US = dt.timedelta(microseconds=1)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_US_PER_DAY = 86_400_000_000

# The range `datetime` (and so a partition date) can represent: year 1 to 9999.
MIN_US = (dt.datetime(1, 1, 1, tzinfo=_UTC) - _EPOCH) // _ONE_US
MAX_US = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC) - _EPOCH) // _ONE_US

# Epoch numbers carry no unit: pick it by magnitude. Below 1e11 is seconds (up to
# the year 5138), below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
_SECONDS_BELOW = 1e11
_MILLIS_BELOW = 1e14
_MICROS_BELOW = 1e17

# Zone names that stand for UTC, and a few unambiguous North-American abbreviations
# (Workato's home zones) for the rare stamp that has an abbreviation but no offset.
# An explicit numeric offset always wins over an abbreviation.
_ZONES: dict[str, int] = {
    "UTC": 0, "GMT": 0, "UT": 0, "Z": 0,
    "EST": -5 * 60, "EDT": -4 * 60, "CST": -6 * 60, "CDT": -5 * 60,
    "MST": -7 * 60, "MDT": -6 * 60, "PST": -8 * 60, "PDT": -7 * 60,
    "AKST": -9 * 60, "AKDT": -8 * 60, "HST": -10 * 60,
}  # fmt: skip

_FALLBACK = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})
    (?:[T\s]+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?
    \s*(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?
    \s*(?:\(?(?P<zone>[A-Za-z]{1,6})\)?)?
    """,
    re.VERBOSE,
)


def parse_timestamp(value: object) -> int | None:
    """UTC epoch microseconds of any documented timestamp form; None if unreadable.

    Never raises: a bad value in one field must not cost the whole object.
    """
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _from_epoch(value)
    if isinstance(value, float):
        return _from_epoch_float(value) if math.isfinite(value) else None
    return None


def _parse_text(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if text.isascii() and (text.isdigit() or (text[0] == "-" and text[1:].isdigit())):
        return _from_epoch(int(text))
    if text.endswith((" UTC", " GMT")):
        # Activity logs: "2020-05-02 02:39:22 UTC". The rest is naive, in UTC.
        text = text[:-4].rstrip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return _parse_fallback(text)
    return _to_micros(moment)


def _to_micros(moment: dt.datetime) -> int | None:
    epoch = _EPOCH_NAIVE if moment.tzinfo is None else _EPOCH
    try:
        micros = (moment - epoch) // _ONE_US
    except OverflowError:  # an offset pushed it past year 1 or 9999
        return None
    return micros if MIN_US <= micros <= MAX_US else None


def _parse_fallback(text: str) -> int | None:
    match = _FALLBACK.fullmatch(text)
    if match is None:
        return _parse_epoch_decimal(text)
    offset_text, zone = match["offset"], match["zone"]
    if offset_text is not None:
        offset_minutes = _offset_minutes(offset_text)
    elif zone is not None:
        found = _ZONES.get(zone.upper())
        if found is None:
            return None  # an abbreviation alone, and not one we can place
        offset_minutes = found
    else:
        offset_minutes = 0
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    try:
        moment = dt.datetime(
            int(match["year"]), int(match["month"]), int(match["day"]),
            int(match["hour"] or 0), int(match["minute"] or 0), int(match["second"] or 0),
            int(fraction), tzinfo=dt.timezone(dt.timedelta(minutes=offset_minutes)),
        )  # fmt: skip
    except ValueError:
        return None
    return _to_micros(moment)


def _offset_minutes(text: str) -> int:
    if text == "Z":
        return 0
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:4] or 0))


def _parse_epoch_decimal(text: str) -> int | None:
    """Epoch numbers written as decimal text ("1694081235.979")."""
    head, dot, tail = text.partition(".")
    if not (dot and text.isascii() and tail.isdigit()):
        return None
    if not (head.isdigit() or (head[:1] == "-" and head[1:].isdigit())):
        return None
    return _from_epoch_float(float(text))


def _from_epoch(number: int) -> int | None:
    size = abs(number)
    if size < _SECONDS_BELOW:
        micros = number * 1_000_000
    elif size < _MILLIS_BELOW:
        micros = number * 1_000
    elif size < _MICROS_BELOW:
        micros = number
    else:
        micros = number // 1_000
    return micros if MIN_US <= micros <= MAX_US else None


def _from_epoch_float(number: float) -> int | None:
    size = abs(number)
    if size < _SECONDS_BELOW:
        micros = round(number * 1_000_000)
    elif size < _MILLIS_BELOW:
        micros = round(number * 1_000)
    elif size < _MICROS_BELOW:
        micros = round(number)
    else:
        micros = math.floor(number / 1_000)
    return micros if MIN_US <= micros <= MAX_US else None


def day_of(micros: int) -> dt.date:
    """The UTC calendar date of epoch microseconds (which `parse_timestamp` keeps in range)."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + micros // _US_PER_DAY)
