"""Keys that are not job files, left inside job folders, never break unit routing (issue 13, item 1).

Another tool (or a person) can leave JSON deeper inside a job folder, such as
`USER/jobs/RECIPE/YYYYMMDD/JOB/.meta/info.json`. Such a key sorts after the folder
`JOB/` and before the job's own files; routing must still keep a unit's key range
contiguous, so that listing a unit never stops before keys routed to it. Every
scenario runs over the moto server and checks the archive row by row, `verify`,
and that a rerun reads and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from archiver.config import Settings
from archiver.engine.api import RunReport, compact, plan, verify
from archiver.engine.units import UnitScope
from tests.functional.engine.buckets import (
    SETTINGS,
    archive,
    assert_same_as_clean,
    committed_rows,
    download,
    job_body,
    jobs_by_id,
    new_bucket,
    put_objects,
    s3_store,
    standard_key,
)

DAY = "20240820"
SMALL_UNITS = replace(SETTINGS, unit_max_objects=40)


def job_id(n: int) -> str:
    return f"j-{n:04d}-KGAKfhsz"


def jobs_with_meta(
    first: int, count: int, *, status: str = "succeeded", stamp: str = "101500"
) -> dict[str, bytes]:
    """`count` jobs, each folder also holding a tool's `.meta/info.json` (read, not a job)."""
    objects: dict[str, bytes] = {}
    for n in range(first, first + count):
        key = standard_key("5234", "234", DAY, job_id(n), f"{DAY}{stamp}", status)
        objects[key] = job_body(job_id(n), status=status)
        objects[key.rsplit("/", 1)[0] + "/.meta/info.json"] = json.dumps({"tool": "sync", "n": n}).encode()
    return objects


def run_units(endpoint: str, source: str, dest: str, settings: Settings) -> list[RunReport]:
    """`plan SOURCE DEST`, then every planned unit at once, each with its own stores."""

    async def main() -> list[RunReport]:
        src, dst = s3_store(source, endpoint), s3_store(dest, endpoint)
        try:
            planned = await plan(src, dst, settings)
        finally:
            await src.close()
            await dst.close()
        return list(await asyncio.gather(*(unit_run(unit.unit) for unit in planned)))

    async def unit_run(unit: str) -> RunReport:
        src, dst = s3_store(source, endpoint), s3_store(dest, endpoint)
        try:
            return await compact(src, dst, settings, scope=UnitScope(unit=unit))
        finally:
            await src.close()
            await dst.close()

    return asyncio.run(main())


def verified(endpoint: str, source: str, dest: str, settings: Settings) -> bool:
    async def main() -> bool:
        src, dst = s3_store(source, endpoint), s3_store(dest, endpoint)
        try:
            return (await verify(src, dst, settings)).ok
        finally:
            await src.close()
            await dst.close()

    return asyncio.run(main())


def assert_no_op(report: RunReport, *, reads_heads: bool = False) -> None:
    """Nothing read from the source but LISTs, nothing written; `reads_heads`: a `--unit` run reads the
    ledger heads of its day (to learn its key range), nothing else."""
    assert report.failures == [] and report.objects_archived == 0
    assert report.by_store["source"]["get"] == 0
    assert report.requests["put"] == 0 and report.requests["delete"] == 0
    if not reads_heads:
        assert report.requests["get"] == 0


@pytest.mark.parametrize("listing", ["folders", "prefix", "flat"])
def test_plan_then_every_unit_at_once_archives_every_job_of_folders_holding_other_keys(
    moto_endpoint: str, tmp_path: Path, listing: str
) -> None:
    # GIVEN 150 jobs of one day, each job folder also holding a `.meta/info.json`, and units of 40,
    # the source listed by each plan in turn
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, jobs_with_meta(0, 150))
    settings = replace(SMALL_UNITS, listing=listing)
    # WHEN `plan` splits the day and every planned unit runs at once
    reports = run_units(moto_endpoint, source, dest, settings)
    # THEN the day was split, every unit finished, and all 150 jobs are archived, each once
    assert len(reports) > 2
    assert all(report.failures == [] for report in reports)
    jobs = jobs_by_id(committed_rows(download(moto_endpoint, dest, tmp_path / "got"), "jobs"))
    assert sorted(job for _, job in jobs) == [job_id(n) for n in range(150)]
    assert verified(moto_endpoint, source, dest, settings)
    # AND the units again read and write nothing; a plain run only records the day as seen, then
    # the next plain run reads and writes nothing
    for report in run_units(moto_endpoint, source, dest, settings):
        assert_no_op(report, reads_heads=True)
    recorded = archive(moto_endpoint, source, dest, settings)
    assert recorded.by_store["source"]["get"] == 0 and recorded.files_written == 0
    assert_no_op(archive(moto_endpoint, source, dest, settings))


def test_new_versions_arriving_in_the_run_that_splits_a_unit_again_are_all_archived(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN 30 jobs with `.meta` keys, archived by a run that split their day into units of 40
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, jobs_with_meta(0, 30, status="running"))
    assert archive(moto_endpoint, source, dest, SMALL_UNITS).units_sealed == 1
    # AND four newer versions of every job arriving together, so each of those units splits in turn
    for stamp in ("111500", "121500", "131500"):
        put_objects(moto_endpoint, source, jobs_with_meta(0, 30, status="running", stamp=stamp))
    put_objects(moto_endpoint, source, jobs_with_meta(0, 30, status="succeeded", stamp="141500"))
    # WHEN plain runs go on
    first = archive(moto_endpoint, source, dest, SMALL_UNITS)
    second = archive(moto_endpoint, source, dest, SMALL_UNITS)
    # THEN units split again, and the archive is exactly one clean run's: every job at its final version
    assert first.failures == [] and first.units_sealed > 0
    assert second.failures == []
    jobs = jobs_by_id(committed_rows(download(moto_endpoint, dest, tmp_path / "final"), "jobs"))
    assert len(jobs) == 30 and {row["status"] for row in jobs.values()} == {"succeeded"}
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path)
    assert verified(moto_endpoint, source, dest, SMALL_UNITS)
    # AND the next run reads and writes nothing
    assert_no_op(archive(moto_endpoint, source, dest, SMALL_UNITS))
