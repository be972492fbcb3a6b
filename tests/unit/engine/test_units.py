"""Units: root names, child names, the root and folder of a key, scopes and shards."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from archiver.config import Settings
from archiver.engine import units
from archiver.engine.units import UNDATED, UnitScope
from archiver.errors import ConfigError
from tests.unit.engine.jobs import job_key

EMBEDDED = "5234/jobs/77/20240820/000/000/000/000/000/001/234/5234-77-1234-20240820101500-succeeded.json"


def test_roots_are_named_by_their_day_or_undated() -> None:
    # GIVEN a layout day and a loose day
    day = dt.date(2024, 8, 20)
    # WHEN they are named
    # THEN day and loose roots carry the ISO date, and a loose root without one is undated
    assert units.day_unit(day) == "day=2024-08-20"
    assert units.loose_unit(day) == "loose=2024-08-20"
    assert units.loose_unit(None) == UNDATED == "loose=undated"


def test_children_are_numbered_below_their_parent_and_lead_back_to_the_root() -> None:
    # GIVEN a root split twice
    child = units.child_unit(units.child_unit("day=2024-08-20", 3), 1)
    # THEN the name says the path, and root, date and owner come from the root
    assert child == "day=2024-08-20.3.1"
    assert units.root_of(child) == "day=2024-08-20"
    assert units.root_date(child) == dt.date(2024, 8, 20)
    assert units.unit_day(child) == dt.date(2024, 8, 20)
    assert units.unit_owner(child) == "d20240820.3.1"
    assert units.unit_owner("loose=2024-08-20.2") == "l20240820.2"
    assert units.unit_owner(UNDATED + ".0") == "lundated.0"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("day=2024-08-20", True),
        ("day=2024-08-20.0", True),
        ("day=2024-08-20.12.3", True),
        ("loose=2024-08-20.1", True),
        ("loose=undated", True),
        ("loose=undated.4", True),
        ("day=2024-02-30", False),  # not a date
        ("day=2024-08-20.", False),
        ("day=2024-08-20.x", False),
        ("day=20240820", False),
        ("undated", False),
        ("day=undated", False),
    ],
)
def test_is_unit_accepts_only_names_plan_prints(name: str, valid: bool) -> None:
    assert units.is_unit(name) is valid


def test_loose_units_have_a_date_but_no_layout_day() -> None:
    assert units.root_date("loose=2024-08-20.1") == dt.date(2024, 8, 20)
    assert units.unit_day("loose=2024-08-20.1") is None
    assert units.root_date(UNDATED) is None


@pytest.mark.parametrize(
    ("key", "day"),
    [
        ("activity/20240820/event-1.json", dt.date(2024, 8, 20)),
        ("activity/2024-08-20/event-1.json", dt.date(2024, 8, 20)),
        # the first path segment that reads as a date wins
        ("audit/2024-08-19/20240820/event.json", dt.date(2024, 8, 19)),
        # the file name is not a folder, and invalid dates are no dates
        ("audit/20240820.json", None),
        ("audit/20241340/event.json", None),
        ("audit/2024-13-01/event.json", None),
        ("event.json", None),
    ],
)
def test_key_date_reads_the_first_date_folder(key: str, day: dt.date | None) -> None:
    assert units.key_date(key) == day


def test_a_layout_key_belongs_to_its_day_root_and_its_job_folder() -> None:
    # GIVEN two versions of one job in the documented layout
    first = job_key("j-KGAKfhsz-GYoLeD", stamp="101500", status="running")
    second = job_key("j-KGAKfhsz-GYoLeD", stamp="101700", status="succeeded")
    # THEN both belong to the day root and share one folder: the job's, with a trailing slash
    assert units.root_of_key(first) == units.root_of_key(second) == "day=2024-08-20"
    assert units.folder_of(first) == units.folder_of(second) == "5234/jobs/77/20240820/j-KGAKfhsz-GYoLeD/"


def test_a_key_a_tool_left_inside_a_job_folder_is_kept_with_the_job() -> None:
    # GIVEN a job's file and a JSON file another tool left deeper in the job's folder
    job = job_key("j-KGAKfhsz-GYoLeD")
    meta = "5234/jobs/77/20240820/j-KGAKfhsz-GYoLeD/.meta/info.json"
    # THEN both have the job's folder: the meta file sorts between the folder and the job's files,
    # so as a folder of its own it would be a split point inside the job
    assert meta < job
    assert units.folder_of(meta) == units.folder_of(job) == "5234/jobs/77/20240820/j-KGAKfhsz-GYoLeD/"
    assert units.root_of_key(meta) == "day=2024-08-20"


def test_a_job_folder_named_by_3_digits_keeps_its_versions_by_their_name_stem() -> None:
    # GIVEN two versions of standard job 100, and embedded jobs whose first id folder is also `100`
    first = job_key("100", stamp="101500", status="running")
    second = job_key("100", stamp="101700", status="succeeded")
    embedded = [
        "5234/jobs/77/20240820/100/000/000/000/000/000/001/5234-77-100000000000000001-20240820101500-ok.json",
        "5234/jobs/77/20240820/100/999/000/000/000/000/002/5234-77-100999000000000002-20240820101500-ok.json",
    ]
    # THEN the versions share one folder, each embedded job has its own, and key order is kept:
    # the standard job's files sort between the two embedded jobs
    assert units.folder_of(first) == units.folder_of(second) == "5234/jobs/77/20240820/100/5234-77-100-"
    assert [units.folder_of(key) for key in sorted([first, *embedded])] == [
        "5234/jobs/77/20240820/100/000/000/000/000/000/001/",
        "5234/jobs/77/20240820/100/5234-77-100-",
        "5234/jobs/77/20240820/100/999/000/000/000/000/002/",
    ]


def odd_keys(count: int, seed: int) -> set[str]:
    """Keys a LIST can return: the layouts, keys nested in job folders, non-layout names, odd characters."""
    pools = [
        ["5234", "5234!", "5234-", "a b", "", "é"],
        ["jobs", "jobs!", "jobs-x", "activity", ""],
        ["77", "77.", "7", ""],
        ["20240820", "20240821", "2024-08-20", "2024082", "20241399", "20240820\n"],
    ]
    deep = [
        *("j-KGAK", "j-KGAK-x", "j!", "100", "000", "001", "234", "10", "1000", "00a", ".meta", "", "~", "é"),
        *(
            "info.json",
            "x.json",
            "5234-77-100-20240820101500-succeeded.json",
            "5234-77-100-",
            "5234-77-1000.json",
        ),
    ]
    rng = random.Random(seed)
    keys: set[str] = set()
    while len(keys) < count:
        depth = rng.randint(1, 14)
        keys.add("/".join(rng.choice(pools[i] if i < len(pools) else deep) for i in range(depth)))
    return keys


def test_the_folder_of_a_key_agrees_with_key_order_for_any_key() -> None:
    # GIVEN thousands of keys of every shape, in the order a LIST returns them
    keys = sorted(odd_keys(20_000, seed=13) | {EMBEDDED, job_key("100"), job_key("j-KGAK")})
    folders = [units.folder_of(key) for key in keys]
    # THEN each folder is a prefix of its key, and folders never go down as keys go up: a unit's
    # range of folders is one contiguous run of keys, so listing it never stops before its keys
    assert all(key.startswith(folder) for key, folder in zip(keys, folders, strict=True))
    out_of_order = [(a, b) for a, b in itertools.pairwise(zip(keys, folders, strict=True)) if a[1] > b[1]]
    assert out_of_order == []


def test_an_embedded_layout_key_is_kept_with_its_job_folder() -> None:
    assert units.root_of_key(EMBEDDED) == "day=2024-08-20"
    assert units.folder_of(EMBEDDED) == "5234/jobs/77/20240820/000/000/000/000/000/001/234/"


def test_a_loose_key_is_its_own_folder_in_the_root_of_its_date() -> None:
    # GIVEN user-activity objects outside the layout, dated and not
    dated = "activity/2024-08-20/event-1.json"
    undated = "misc/event-1.json"
    # THEN each is a folder of its own, in the root its date names
    assert units.root_of_key(dated) == "loose=2024-08-20"
    assert units.folder_of(dated) == dated
    assert units.root_of_key(undated) == UNDATED
    assert units.folder_of(undated) == undated


@pytest.mark.parametrize(
    "key",
    [
        "5234/jobs/77/20240820/stray.json",
        "5234/jobs/77/20240820/100/extra/5234-77-100-20240820101500-succeeded.json",
        "5234/jobs/77/20240820/000/001/5234-77-1-20240820101500-succeeded.json",
    ],
)
def test_a_key_inside_a_layout_day_folder_belongs_to_that_day_even_off_the_layout(key: str) -> None:
    # GIVEN a JSON key inside a layout day folder that is not itself a layout key:
    # listing the day (compact, verify) finds it in the day root
    # WHEN its root is asked for by key alone (compact_keys, from an S3 event)
    root = units.root_of_key(key)
    # THEN it is the same root, or the two paths would archive it twice in two units
    assert root == "day=2024-08-20"
    assert units.folder_of(key) == key


def test_a_unit_scope_takes_the_root_of_its_unit_and_narrows_the_window_to_its_day() -> None:
    # GIVEN a scope of one child unit
    scope = UnitScope(unit="day=2024-08-20.2")
    # THEN it takes its root only, and the window is that day
    assert scope.accepts_root("day=2024-08-20")
    assert not scope.accepts_root("day=2024-08-21")
    assert not scope.everything
    narrowed = scope.narrow(Settings())
    assert (narrowed.since, narrowed.until) == (dt.date(2024, 8, 20), dt.date(2024, 8, 20))
    # AND an undated unit cannot narrow the window
    assert UnitScope(unit=UNDATED).narrow(Settings()) == Settings()


def test_a_unit_scope_refuses_a_name_plan_never_prints() -> None:
    with pytest.raises(ConfigError, match="not a unit: 'day=2024-8-20'"):
        UnitScope(unit="day=2024-8-20")


def test_shards_split_the_roots_between_them_exactly_once() -> None:
    # GIVEN a month of day and loose roots and three shards
    roots = [units.day_unit(dt.date(2024, 8, d)) for d in range(1, 32)]
    roots += [units.loose_unit(dt.date(2024, 8, d)) for d in range(1, 32)] + [UNDATED]
    shards = [UnitScope(shard=(index, 3)) for index in range(3)]
    # WHEN each root is offered to every shard
    takers = {root: [i for i, shard in enumerate(shards) if shard.accepts_root(root)] for root in roots}
    # THEN exactly one shard takes each root, every shard gets some, and a child follows its root
    assert all(len(taken) == 1 for taken in takers.values())
    assert {taken[0] for taken in takers.values()} == {0, 1, 2}
    assert units.shard_key("day=2024-08-20.3.1") == units.shard_key("day=2024-08-20")
    assert UnitScope().everything and UnitScope().accepts_root("anything")
