"""A DEST that is SOURCE or lies inside it is refused: exit 2, one line, nothing written (issue 13, item 7).

Inside SOURCE, the archive's own JSON ledger files would be listed as source objects,
quarantined on every run, and no rerun would ever be a no-op. Every refused command
line runs side by side once, as a user types it, against moto over HTTP or on local
folders; a DEST beside SOURCE (a sibling prefix that merely starts alike) is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.functional.cli.test_cli import (
    Invocation,
    Outcome,
    cli_env,
    finished,
    new_bucket,
    one_error_line,
    run_side_by_side,
    s3_objects,
    single_report,
)
from tests.functional.engine.buckets import job_body, put_objects, standard_key

DAY = "20240820"
KEY = standard_key("5234", "234", DAY, "j-1", f"{DAY}100000", "succeeded")

# name -> (command line with {bucket} and {folder} to fill in, what the line names)
REFUSED: dict[str, tuple[list[str], str]] = {
    "s3-dest-is-source": (["compact", "s3://{bucket}/logs", "s3://{bucket}/logs/"], "is SOURCE"),
    "s3-dest-inside-source": (
        ["compact", "s3://{bucket}/logs/", "s3://{bucket}/logs/archive/"],
        "lies inside",
    ),
    "s3-dest-inside-whole-bucket": (["compact", "s3://{bucket}", "s3://{bucket}/archive"], "lies inside"),
    "s3-verify-dest-inside-source": (
        ["verify", "s3://{bucket}/logs/", "s3://{bucket}/logs/a/"],
        "lies inside",
    ),
    "s3-plan-dest-inside-source": (["plan", "s3://{bucket}/logs/", "s3://{bucket}/logs/a/"], "lies inside"),
    "folder-dest-is-source": (["compact", "{folder}", "{folder}/"], "is SOURCE"),
    "folder-dest-inside-source": (["compact", "{folder}", "{folder}/archive"], "lies inside"),
    "folder-dest-inside-source-by-dots": (
        ["compact", "{folder}/../source", "{folder}/x/../archive"],
        "lies inside",
    ),
}


@dataclass(frozen=True, slots=True)
class Runs:
    bucket: str
    folder: Path
    outcomes: dict[str, Outcome]


def folder_entries(root: Path) -> list[str]:
    """Every file and folder under `root`, relative to it."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.fixture(scope="module")
def runs(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """One job object under `s3://bucket/logs/` and in a local `source` folder; each command line run once."""
    bucket = new_bucket(moto_endpoint)
    put_objects(moto_endpoint, bucket, {f"logs/{KEY}": job_body("j-1")})
    folder = tmp_path_factory.mktemp("inside") / "source"
    (folder / KEY).parent.mkdir(parents=True)
    (folder / KEY).write_bytes(job_body("j-1"))
    env = cli_env(moto_endpoint)
    invocations = {
        name: Invocation([arg.format(bucket=bucket, folder=folder) for arg in args], env)
        for name, (args, _) in REFUSED.items()
    }
    return Runs(bucket, folder, run_side_by_side(invocations))


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_dest_inside_source_exits_2_with_one_line_and_writes_nothing(
    case: str, runs: Runs, moto_endpoint: str
) -> None:
    # GIVEN a command line whose DEST is SOURCE or lies inside it; WHEN it ran
    result = finished(runs.outcomes[case])
    # THEN exit 2 and one line saying where DEST lies
    line = one_error_line(result, 2)
    assert REFUSED[case][1] in line and "DEST" in line and "SOURCE" in line
    # AND nothing was written: the bucket and the folder hold the one source object only
    assert list(s3_objects(moto_endpoint, runs.bucket)) == [f"logs/{KEY}"]
    assert folder_entries(runs.folder) == sorted([str(folder) for folder in Path(KEY).parents[:-1]] + [KEY])


def test_a_dest_beside_source_whose_prefix_starts_alike_is_archived_and_a_rerun_is_a_no_op(
    moto_endpoint: str,
) -> None:
    # GIVEN a source under `logs/` and an archive under `logs-archive/` of the same bucket
    bucket = new_bucket(moto_endpoint)
    put_objects(moto_endpoint, bucket, {f"logs/{KEY}": job_body("j-1")})
    env = cli_env(moto_endpoint)
    args = ["compact", f"s3://{bucket}/logs/", f"s3://{bucket}/logs-archive/", "--json"]
    # WHEN compact runs twice
    first = finished(run_side_by_side({"first": Invocation(args, env)})["first"])
    second = finished(run_side_by_side({"second": Invocation(args, env)})["second"])
    # THEN the first archives the object, and the second reads and writes nothing
    assert first.returncode == 0, first.stderr
    assert single_report(first)["objects_archived"] == 1
    assert second.returncode == 0, second.stderr
    report = single_report(second)
    requests = report["requests"]
    assert isinstance(requests, dict)
    assert (report["objects_archived"], requests["get"], requests["put"]) == (0, 0, 0)
