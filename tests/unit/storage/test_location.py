"""Whether one location lies inside another: S3 prefixes by bucket and prefix, folders by resolved path."""

from __future__ import annotations

from pathlib import Path

import pytest

from archiver.storage.location import is_within


@pytest.mark.parametrize(
    ("inner", "outer", "expected"),
    [
        ("s3://bkt/logs/", "s3://bkt/logs", True),
        ("s3://bkt/logs/archive/", "s3://bkt/logs/", True),
        ("s3://bkt/archive/", "s3://bkt", True),
        ("s3://bkt", "s3://bkt/", True),
        ("s3://bkt/logs-archive/", "s3://bkt/logs/", False),  # a sibling that starts alike
        ("s3://bkt/logs/", "s3://bkt/logs/archive/", False),
        ("s3://other-bkt/logs/", "s3://bkt/logs/", False),
    ],
)
def test_s3_locations_compare_by_bucket_and_prefix(inner: str, outer: str, expected: bool) -> None:
    assert is_within(inner, outer) is expected


def test_folders_compare_by_resolved_path(tmp_path: Path) -> None:
    # GIVEN a source folder, a link to it and a sibling whose name starts alike
    source = tmp_path / "source"
    source.mkdir()
    (tmp_path / "link").symlink_to(source)
    # THEN the folder itself, a folder under it (existing or not, through `..` or the link) are within it
    assert is_within(str(source) + "/", str(source))
    assert is_within(str(source / "archive"), str(source))
    assert is_within(str(source / "x" / ".." / "archive"), str(source))
    assert is_within(str(tmp_path / "link" / "archive"), str(source))
    # AND a sibling, the parent, and any S3 location are not
    assert not is_within(str(tmp_path / "source-archive"), str(source))
    assert not is_within(str(tmp_path), str(source))
    assert not is_within("s3://bkt/source/", str(source))
    assert not is_within(str(source), "s3://bkt/")


def test_a_relative_folder_is_resolved_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the working folder is the source
    monkeypatch.chdir(tmp_path)
    # THEN `.` and `archive` lie within it, as `..` does not
    assert is_within("archive", str(tmp_path))
    assert is_within(".", str(tmp_path))
    assert not is_within("..", str(tmp_path))
