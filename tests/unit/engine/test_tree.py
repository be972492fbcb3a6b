"""The unit tree of a root: routing through sealed units, ranges, leaves, and picking split points."""

from __future__ import annotations

import pytest

from archiver.engine.ledger import Child, FileRef, Head, Retired, SegmentRef
from archiver.engine.tree import (
    BoundaryPicker,
    Leaf,
    UnitState,
    UnitTree,
    child_for,
    quantile_boundaries,
    sealed,
)
from tests.unit.engine.jobs import job_folder_of

ROOT = "day=2024-08-20"


def f(n: int) -> str:
    """The job folder of job `n` (three digits, so folders sort as numbers do)."""
    return job_folder_of(f"{n:03d}")


def three_level_tree() -> UnitTree:
    """root -> .0 .1 .2; .1 -> .1.0 .1.1 .1.2; .1.1 -> .1.1.0 .1.1.1; each sealed unit keeps some folders."""
    tree = UnitTree(ROOT)
    tree.states[ROOT] = UnitState(sealed(Head(ROOT), [f(100), f(200)]), '"e-root"')
    tree.held[ROOT] = frozenset({f(50), f(150)})
    one = f"{ROOT}.1"
    tree.states[one] = UnitState(sealed(tree.state(one).head, [f(140), f(170)]), '"e-1"')
    tree.held[one] = frozenset({f(120)})
    one_one = f"{ROOT}.1.1"
    tree.states[one_one] = UnitState(sealed(tree.state(one_one).head, [f(160)]), '"e-11"')
    tree.held[one_one] = frozenset({f(145)})
    return tree


@pytest.mark.parametrize(
    ("folder", "unit"),
    [
        (f(50), ROOT),  # held by the root, though inside .0's range
        (f(150), ROOT),  # held by the root, though two levels further down by range
        (f(10), f"{ROOT}.0"),
        (f(120), f"{ROOT}.1"),  # held by .1
        (f(110), f"{ROOT}.1.0"),
        (f(145), f"{ROOT}.1.1"),  # held by .1.1
        (f(141), f"{ROOT}.1.1.0"),
        (f(165), f"{ROOT}.1.1.1"),
        (f(170), f"{ROOT}.1.2"),  # a boundary belongs to the child that starts at it
        (f(199), f"{ROOT}.1.2"),
        (f(200), f"{ROOT}.2"),
        (f(999), f"{ROOT}.2"),
    ],
)
def test_route_keeps_held_folders_and_sends_others_down_by_range(folder: str, unit: str) -> None:
    # GIVEN a tree three levels deep
    tree = three_level_tree()
    # WHEN a job folder is routed
    # THEN it goes to the sealed unit that keeps it, else to the leaf whose range holds it
    assert tree.route(folder) == unit


def test_ranges_follow_the_children_of_each_parent() -> None:
    tree = three_level_tree()
    assert tree.range_of(ROOT) == (None, None)
    assert tree.range_of(f"{ROOT}.0") == (None, f(100))
    assert tree.range_of(f"{ROOT}.1") == (f(100), f(200))
    assert tree.range_of(f"{ROOT}.2") == (f(200), None)
    assert tree.range_of(f"{ROOT}.1.1.1") == (f(160), f(170))
    assert tree.range_of(f"{ROOT}.1.2") == (f(170), f(200))
    # AND a unit's fresh head carries its range
    assert (tree.state(f"{ROOT}.1.1.0").head.lo, tree.state(f"{ROOT}.1.1.0").head.hi) == (f(140), f(160))


def test_a_name_that_is_not_a_child_has_no_range() -> None:
    tree = three_level_tree()
    with pytest.raises(KeyError, match="not a child"):
        tree.range_of(f"{ROOT}.7")


def test_leaves_are_the_unsealed_units_in_key_order() -> None:
    tree = three_level_tree()
    assert tree.leaves() == [
        Leaf(f"{ROOT}.0", None, f(100)),
        Leaf(f"{ROOT}.1.0", f(100), f(140)),
        Leaf(f"{ROOT}.1.1.0", f(140), f(160)),
        Leaf(f"{ROOT}.1.1.1", f(160), f(170)),
        Leaf(f"{ROOT}.1.2", f(170), f(200)),
        Leaf(f"{ROOT}.2", f(200), None),
    ]
    assert [leaf.unit for leaf in tree.leaves(f"{ROOT}.1.1")] == [f"{ROOT}.1.1.0", f"{ROOT}.1.1.1"]
    # AND an unsealed unit is its own only leaf
    assert tree.leaves(f"{ROOT}.2") == [Leaf(f"{ROOT}.2", f(200), None)]


def test_ancestors_are_listed_nearest_first() -> None:
    assert UnitTree(ROOT).ancestors(f"{ROOT}.1.1.0") == [f"{ROOT}.1.1", f"{ROOT}.1", ROOT]
    assert UnitTree(ROOT).ancestors(ROOT) == []


def test_an_unsealed_root_takes_every_folder() -> None:
    tree = UnitTree(ROOT)
    assert tree.route(f(1)) == tree.route(f(999)) == ROOT
    assert tree.state(ROOT).etag is None and not tree.state(ROOT).head.sealed


def test_sealed_keeps_the_head_and_splits_only_inside_its_range() -> None:
    # GIVEN a committed child unit with a range, files, segments, retired files and lineage
    head = Head(
        unit=f"{ROOT}.1",
        generation=4,
        lo=f(100),
        hi=f(200),
        segments=[SegmentRef("_archiver/units/x/index-g000004-aa.parquet", 9)],
        files=[FileRef("jobs/date=2024-08-20/d20240820.1-g000004-aa-0000.parquet", "jobs", 9, 900)],
        retired=[Retired("jobs/date=2024-08-20/old.parquet", 5)],
        lineage=["aa"],
    )
    # WHEN it is sealed at boundaries, some outside its range, one at its start, one twice
    result = sealed(head, [f(150), f(50), f(100), f(120), f(250), f(150), f(200)])
    # THEN only the folders strictly inside make children, in order, the first starting at lo
    assert result.children == [
        Child(f"{ROOT}.1.0", f(100)),
        Child(f"{ROOT}.1.1", f(120)),
        Child(f"{ROOT}.1.2", f(150)),
    ]
    # AND everything else is kept, and the original is untouched
    assert (result.generation, result.lo, result.hi) == (4, f(100), f(200))
    assert (result.segments, result.files, result.retired, result.lineage) == (
        head.segments,
        head.files,
        head.retired,
        head.lineage,
    )
    assert not head.sealed


def test_a_sealed_root_starts_its_first_child_at_the_empty_key() -> None:
    result = sealed(Head(ROOT), [f(100)])
    assert result.children == [Child(f"{ROOT}.0", ""), Child(f"{ROOT}.1", f(100))]
    assert child_for(result, "0000/") == f"{ROOT}.0"
    assert child_for(result, f(99)) == f"{ROOT}.0"
    assert child_for(result, f(100)) == f"{ROOT}.1"


def test_boundary_picker_cuts_at_folder_starts_every_chunk_objects() -> None:
    # GIVEN versions of jobs streaming by in key order, four of A, one of B, two of C, ...
    picker = BoundaryPicker(3)
    stream = [f(1)] * 4 + [f(2)] + [f(3)] * 2 + [f(4)] + [f(5)] * 4 + [f(6)]
    # WHEN each is added
    for folder in stream:
        picker.add(folder)
    # THEN a boundary falls on the first folder that starts once a chunk has passed
    assert picker.boundaries == [f(2), f(4), f(6)]


def test_boundary_picker_never_splits_a_folder() -> None:
    # GIVEN one job with many versions between two small ones
    picker = BoundaryPicker(2)
    for folder in [f(1), *[f(2)] * 50, f(3)]:
        picker.add(folder)
    # THEN the big folder stays whole: cuts fall only where a folder starts
    assert picker.boundaries == [f(3)]
    # AND a single folder, however big, gives no boundary at all
    lone = BoundaryPicker(2)
    for _ in range(50):
        lone.add(f(7))
    assert lone.boundaries == []
    assert BoundaryPicker(0).chunk == 1


def test_quantile_boundaries_cut_distinct_sorted_folders_into_near_equal_parts() -> None:
    folders = [f(n) for n in (9, 1, 5, 3, 7, 0, 8, 2, 6, 4, 4, 4)]
    assert quantile_boundaries(folders, 3) == [f(3), f(7)]
    assert quantile_boundaries(folders, 1) == []
    # fewer folders than parts: every folder but the first starts a part
    assert quantile_boundaries([f(3), f(1), f(2)], 5) == [f(2), f(3)]
    assert quantile_boundaries([f(1)] * 9, 4) == []
