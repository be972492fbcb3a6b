"""Every way of listing the source (`ARCHIVER_LISTING`) archives exactly the same, and costs what it should.

The source is a synth corpus in a bucket of the moto server (pages of 7 keys), plus
what tools leave in workspaces' `jobs/` folders: files deep in job folders, files
around the day folders of a recipe. Each plan is forced in turn; the archive is
read back row by row against one clean run listed by folders, `verify` must pass
whatever plan it lists with, and an unchanged rerun reads and writes nothing, even
when the plan changes between runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from archiver.config import Settings
from archiver.engine.api import verify
from archiver.local.moto_server import upload_tree
from archiver.local.synth import write_corpus
from tests.functional.engine.buckets import (
    SETTINGS,
    archive,
    committed_archive,
    differences,
    download,
    job_body,
    new_bucket,
    put_objects,
    s3_store,
    standard_key,
)

PLANS = ("folders", "prefix", "flat")
START = dt.date(2024, 8, 26)


def clutter() -> dict[str, bytes]:
    """Keys another tool left in a workspace's jobs/ folder, around and inside the layout."""
    day = f"{START:%Y%m%d}"
    job = standard_key("9001", "55", day, "j-clutter-1", f"{day}101500", "succeeded")
    folder = job.rsplit("/", 1)[0]
    return {
        job: job_body("j-clutter-1"),
        f"{folder}/.meta/info.json": b'{"tool": "sync"}',
        "9001/jobs/readme.json": b'{"note": "jobs folder"}',
        f"9001/jobs/55/{day}x.json": b'{"note": "between day folders"}',
        "9001/jobs/55/zz/notes.json": b'{"note": "after the day folders"}',
    }


@pytest.fixture(scope="module")
def source(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("listing-source")
    write_corpus(folder, jobs=40, seed=11, start=START, days=3)
    bucket = new_bucket(moto_endpoint, "listing")
    upload_tree(moto_endpoint, bucket, folder)
    put_objects(moto_endpoint, bucket, clutter())
    return bucket


@pytest.fixture(scope="module")
def clean(moto_endpoint: str, source: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    dest = new_bucket(moto_endpoint, "listing-clean")
    report = archive(moto_endpoint, source, dest, replace(SETTINGS, listing="folders"))
    assert report.failures == [] and report.listing == {"folders": 6}
    return committed_archive(download(moto_endpoint, dest, tmp_path_factory.mktemp("listing-clean")))


def verified(endpoint: str, source: str, dest: str, settings: Settings) -> bool:
    async def main() -> bool:
        src, dst = s3_store(source, endpoint), s3_store(dest, endpoint)
        try:
            return (await verify(src, dst, settings)).ok
        finally:
            await src.close()
            await dst.close()

    return asyncio.run(main())


@pytest.mark.parametrize("plan", PLANS)
def test_each_listing_plan_archives_exactly_what_one_clean_run_does(
    moto_endpoint: str, source: str, clean: dict[str, list[str]], plan: str, tmp_path: Path
) -> None:
    # GIVEN the source and a new archive
    dest = new_bucket(moto_endpoint)
    settings = replace(SETTINGS, listing=plan)
    # WHEN a run lists the source by the plan forced
    report = archive(moto_endpoint, source, dest, settings)
    # THEN the report names it, and the archive holds exactly the clean run's rows
    assert report.failures == [] and report.listing == {plan: 6}
    assert differences(committed_archive(download(moto_endpoint, dest, tmp_path)), clean) == {}
    # AND verify passes, listing by every plan
    assert all(verified(moto_endpoint, source, dest, replace(settings, listing=other)) for other in PLANS)
    # AND an unchanged rerun, by this plan or another, reads and writes nothing
    for other in PLANS:
        again = archive(moto_endpoint, source, dest, replace(settings, listing=other))
        assert again.failures == [] and again.objects_archived == 0
        assert again.requests["get"] == 0 and again.requests["put"] == 0 and again.requests["delete"] == 0


@pytest.mark.parametrize("plan", PLANS)
def test_each_listing_plan_takes_a_new_day_and_late_versions_in_the_lookback(
    moto_endpoint: str, plan: str, tmp_path: Path
) -> None:
    # GIVEN an archive of two days, then a new day and a late version of a first-day job arriving
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    days = [START + dt.timedelta(days=i) for i in range(3)]
    first = {
        standard_key(
            "5234", "234", f"{day:%Y%m%d}", f"j-{n}-{day:%d}", f"{day:%Y%m%d}100000", "running"
        ): job_body(f"j-{n}-{day:%d}", status="running")
        for day in days[:2]
        for n in range(4)
    }
    put_objects(moto_endpoint, source, {**first, **clutter()})
    settings = replace(SETTINGS, listing=plan, lookback_days=1)
    assert archive(moto_endpoint, source, dest, settings).failures == []
    late_day = f"{days[1]:%Y%m%d}"
    arriving = {
        standard_key(
            "5234", "234", late_day, f"j-0-{days[1]:%d}", f"{late_day}120000", "succeeded"
        ): job_body(f"j-0-{days[1]:%d}"),
        standard_key("5234", "234", f"{days[2]:%Y%m%d}", "j-new", f"{days[2]:%Y%m%d}100000", "succeeded"): (
            job_body("j-new")
        ),
    }
    put_objects(moto_endpoint, source, arriving)
    # WHEN the next (windowed) run lists by the plan
    nightly = archive(moto_endpoint, source, dest, settings)
    # THEN it reads just the two new objects, and the archive equals one clean run's
    assert nightly.failures == [] and nightly.by_store["source"]["get"] == 2
    want = new_bucket(moto_endpoint)
    archive(moto_endpoint, source, want, replace(SETTINGS, listing="folders"))
    got = committed_archive(download(moto_endpoint, dest, tmp_path / "got"))
    assert differences(got, committed_archive(download(moto_endpoint, want, tmp_path / "want"))) == {}
