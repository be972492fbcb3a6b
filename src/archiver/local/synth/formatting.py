"""How a synthetic corpus spells moments and JSON, in the forms Workato writes.

Moments are UTC epoch microseconds; each rendering takes the UTC offset (minutes)
the text should show.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from archiver.local.synth.vocabulary import TZ_NAMES

Json = dict[str, Any]

DAY_US = 86_400 * 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def moment(us: int, offset_min: int) -> dt.datetime:
    tz = dt.timezone(dt.timedelta(minutes=offset_min))
    return (_EPOCH + dt.timedelta(microseconds=us)).astimezone(tz)


def offset_text(offset_min: int, colon: bool) -> str:
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{sign}{hours:02d}:{minutes:02d}" if colon else f"{sign}{hours:02d}{minutes:02d}"


def iso(us: int, offset_min: int, digits: int, zulu: bool = False) -> str:
    """ISO 8601 with offset, e.g. `2022-10-19T22:30:46-07:00`, with 0, 3 or 6 fraction digits."""
    m = moment(us, offset_min)
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if digits:
        text += f".{m.microsecond:06d}"[: digits + 1]
    if zulu and offset_min == 0:
        return text + "Z"
    return text + offset_text(offset_min, colon=True)


def spaced(us: int, offset_min: int, *, utc_word: bool = False, zone: bool = False) -> str:
    """The activity/`Time` forms: `2020-05-02 02:39:22 UTC`, `2019-11-24 14:29:30 -0800`,
    `2023-09-07 02:07:15.979 -0800 PST`."""
    if utc_word:
        offset_min = 0
    m = moment(us, offset_min)
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if utc_word:
        return text + " UTC"
    if zone:
        millis = m.microsecond // 1000
        return f"{text}.{millis:03d} {offset_text(offset_min, colon=False)} {TZ_NAMES[offset_min]}"
    return f"{text} {offset_text(offset_min, colon=False)}"


def stamp(us: int, long: bool) -> str:
    """A key's STAMP: `YYYYMMDDHHMMSS`, or `YYYYMMDD` when not `long`."""
    m = moment(us, 0)
    day = f"{m.year:04d}{m.month:02d}{m.day:02d}"
    return f"{day}{m.hour:02d}{m.minute:02d}{m.second:02d}" if long else day


def day_start_us(day: dt.date) -> int:
    return (dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(microseconds=1)


def utc_day(us: int) -> dt.date:
    return (_EPOCH + dt.timedelta(microseconds=us)).date()


def dumps(value: Any, pretty: bool = False) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 if pretty else 0)
