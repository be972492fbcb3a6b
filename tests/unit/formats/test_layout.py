from __future__ import annotations

import datetime as dt

import pytest

from archiver.formats.layout import decode_event_key, is_json_key, parse_day, parse_key, parse_stamp


def test_standard_key_reads_job_id_with_hyphens_from_its_folder() -> None:
    # GIVEN the documented example key
    key = "1234/jobs/456/20220614/j-KGAKfhsz-GYoLeD/1234-456-j-KGAKfhsz-GYoLeD-20220614-succeeded.json"
    # WHEN it is parsed
    info = parse_key(key)
    # THEN every part is read, the file name from the right
    assert info is not None
    assert (info.user_id, info.recipe_id, info.job_id) == ("1234", "456", "j-KGAKfhsz-GYoLeD")
    assert info.day == dt.date(2022, 6, 14)
    assert info.layout == "standard"
    assert info.status == "succeeded"
    assert info.stamp_us == parse_stamp("20220614")


def test_embedded_layout_rebuilds_numeric_job_id_from_seven_groups() -> None:
    key = "5234/jobs/234/20180521/000/000/000/000/000/000/100/5234-234-100-20180521000000-succeeded.json"
    info = parse_key(key)
    assert info is not None
    assert info.job_id == "100"
    assert info.layout == "embedded"
    assert info.stamp_us == int(dt.datetime(2018, 5, 21, tzinfo=dt.UTC).timestamp()) * 1_000_000


def test_long_stamp_and_unusual_status_are_read_from_the_right() -> None:
    key = "1/jobs/2/20240102/j-a-b-c/1-2-j-a-b-c-20240102030405-timed-out.json"
    info = parse_key(key)
    assert info is not None
    assert info.status == "timed-out"
    assert info.stamp_us == int(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp()) * 1_000_000


def test_odd_file_name_keeps_folder_facts_but_no_stamp() -> None:
    info = parse_key("1/jobs/2/20240102/j-x/whatever.json")
    assert info is not None
    assert info.job_id == "j-x"
    assert info.stamp_us is None and info.status is None


@pytest.mark.parametrize(
    "key",
    [
        "1/jobs/2/2024010/j-x/a.json",  # seven-digit day
        "1/jobs/2/20241302/j-x/a.json",  # month 13
        "1/activity/2/20240102/j-x/a.json",  # not the jobs folder
        "1/jobs/2/20240102/j-x/a.txt",  # not JSON
        "1/jobs/2/20240102/00a/000/000/000/000/000/100/a.json",  # bad embedded group
        "1/jobs/2/20240102/a.json",  # too shallow
        "",
    ],
)
def test_keys_outside_the_layout_are_not_parsed(key: str) -> None:
    assert parse_key(key) is None


def test_json_keys_and_days() -> None:
    assert is_json_key("a/B.JSON")
    assert not is_json_key("a/_SUCCESS")
    assert not is_json_key("a/b.json.tmp")
    assert parse_day("20240229") == dt.date(2024, 2, 29)
    assert parse_day("20230229") is None


def test_event_notification_keys_are_url_decoded() -> None:
    assert decode_event_key("a+b.json") == "a b.json"
    assert decode_event_key("a%2Bb.json") == "a+b.json"
