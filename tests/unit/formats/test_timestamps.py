from __future__ import annotations

import datetime as dt

import pytest

from archiver.formats.timestamps import day_of, parse_timestamp

# Expected values were computed independently with calendar.timegm.
FORMS = [
    ("2022-10-19T22:30:46-07:00", 1666243846000000),
    ("2022-10-19T22:30:46.084655-07:00", 1666243846084655),
    ("2024-03-11T20:56:44.000Z", 1710190604000000),
    ("2020-05-02 02:39:22 UTC", 1588387162000000),
    ("2019-11-24 14:29:30 -0800", 1574634570000000),
    ("2023-09-07 02:07:15.979 -0800 AKDT", 1694081235979000),
    ("2020-05-02T02:39:22", 1588387162000000),  # naive ISO is UTC
    ("2020-05-02 02:39:22", 1588387162000000),
    ("  2020-05-02 02:39:22 UTC\n", 1588387162000000),
    ("2023-09-07T02:07:13.217909123-08:00", 1694081233217909),  # nanoseconds cut to µs
    ("2023-09-07 02:07:15 AKDT", 1694081235000000),  # abbreviation only, one we can place
    ("2023-09-07 02:07:15.979 -08:00 (AKDT)", 1694081235979000),
]

EPOCHS = [
    (1694081235, 1694081235000000),  # seconds
    (1694081235979, 1694081235979000),  # Time_utc, milliseconds
    (1694081235979000, 1694081235979000),  # Time_micro
    (1694081235979000000, 1694081235979000),  # Time_nano
    (1703275739238000, 1703275739238000),  # now_utc_micro
    (1694081235.979, 1694081235979000),  # fractional seconds
    ("1694081235979", 1694081235979000),  # epoch as text
    ("1694081235.979", 1694081235979000),
    (0, 0),
]

UNREADABLE = [
    None,
    True,
    False,
    "",
    "   ",
    "garbage",
    "2023-02-30 10:00:00 -0800",  # no such day
    "2023-09-07 02:07:15 XYZ",  # an abbreviation we cannot place
    "²",  # a digit that is not ASCII
    "9999-12-31T23:59:59-05:00",  # past year 9999 in UTC
    10**30,
    float("nan"),
    float("inf"),
    {"at": "2020-05-02 02:39:22 UTC"},
    ["2020-05-02 02:39:22 UTC"],
]


@pytest.mark.parametrize(("text", "expected"), FORMS)
def test_every_documented_text_form_reads_as_utc_microseconds(text: str, expected: int) -> None:
    # GIVEN a timestamp in one of the documented forms
    # WHEN it is parsed
    micros = parse_timestamp(text)
    # THEN it is the exact UTC instant in epoch microseconds
    assert micros == expected
    assert isinstance(micros, int)


@pytest.mark.parametrize(("value", "expected"), EPOCHS)
def test_epoch_numbers_pick_their_unit_by_magnitude(value: object, expected: int) -> None:
    # GIVEN an epoch number in seconds, ms, µs or ns
    # WHEN it is parsed
    micros = parse_timestamp(value)
    # THEN the unit is inferred and the result is microseconds
    assert micros == expected


@pytest.mark.parametrize("value", UNREADABLE)
def test_unreadable_values_give_none_and_never_raise(value: object) -> None:
    # GIVEN a value that is not a timestamp
    # WHEN it is parsed
    micros = parse_timestamp(value)
    # THEN the answer is None, not an exception
    assert micros is None


def test_offset_wins_over_the_zone_abbreviation() -> None:
    # GIVEN the same wall time with a numeric offset and a contradicting abbreviation
    # WHEN both are parsed
    with_wrong_name = parse_timestamp("2023-09-07 02:07:15.979 -0800 EST")
    with_right_name = parse_timestamp("2023-09-07 02:07:15.979 -0800 AKDT")
    # THEN the offset decides
    assert with_wrong_name == with_right_name == 1694081235979000


def test_day_of_is_the_utc_calendar_date() -> None:
    # GIVEN a local evening that is already the next day in UTC
    micros = parse_timestamp("2022-10-19T22:30:46-07:00")
    assert micros is not None
    # WHEN its day is taken
    day = day_of(micros)
    # THEN it is the UTC date
    assert day == dt.date(2022, 10, 20)
    assert day_of(0) == dt.date(1970, 1, 1)
    assert day_of(-1) == dt.date(1969, 12, 31)
