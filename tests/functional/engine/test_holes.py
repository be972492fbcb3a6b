"""The holes found by trying the engine as a new user would (issue 7), each closed end to end.

Every scenario runs over a real moto server on loopback (source and archive are
buckets, read through S3Store over HTTP), or through the command line in a
subprocess where the exit code is part of the contract. Objects are written by
hand (`buckets.py`) so each scenario controls its keys, ids and versions exactly;
archives are read back row by row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

from archiver.engine import ledger
from tests.functional.cli.test_cli import archiver_cli, cli_env, one_error_line, single_report
from tests.functional.engine.buckets import (
    SETTINGS,
    archive,
    assert_same_as_clean,
    bucket_keys,
    canonical,
    committed_files,
    committed_rows,
    delete_objects,
    download,
    embedded_key,
    get_object,
    heads,
    job_body,
    jobs_by_id,
    new_bucket,
    put_objects,
    run_compact,
    s3_store,
    standard_key,
)
from tests.functional.faults import INTERNAL, FaultProxy, Rule
from tests.functional.readback import file_rows

DAY1, DAY2 = "20240820", "20240821"
FUTURE = "29991231"


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def watermark_days(endpoint: str, bucket: str) -> list[dt.date]:
    """The days of the archive's `_archiver/complete/day=...` markers."""
    keys = bucket_keys(endpoint, bucket, ledger.WATERMARK_ROOT)
    return sorted(dt.date.fromisoformat(key.rsplit("day=", 1)[1]) for key in keys)


# --------------------------------------------------------------------------- a future-dated day folder


def test_a_future_day_folder_is_archived_and_reported_and_never_moves_the_watermark(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN two normal days and a stray day folder dated 2999-12-31, on a clock that says 2024-08-22
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    objects = {
        standard_key("5234", "234", day, f"j-{day}-{n}", f"{day}100000", "succeeded"): job_body(
            f"j-{day}-{n}"
        )
        for day in (DAY1, DAY2, FUTURE)
        for n in range(2)
    }
    put_objects(moto_endpoint, source, objects)
    today = dt.date(2024, 8, 22)
    # WHEN a plain compact (no --since) runs
    first = archive(moto_endpoint, source, dest, clock=lambda: at(today))
    # THEN every object is archived, the future day included, and the report names that day
    assert first.failures == []
    assert first.objects_archived == 6
    assert first.future_days == ["day=2999-12-31"]
    rows = committed_rows(download(moto_endpoint, dest, tmp_path / "first"), "jobs")
    assert sorted((row["job_id"], row["date"].isoformat(), row["source_key"]) for row in rows) == sorted(
        (key.split("/")[4], dt.datetime.strptime(key.split("/")[3], "%Y%m%d").date().isoformat(), key)
        for key in objects
    )
    # AND the watermark is the newest real day, not the year 2999 nor today + 1 day
    assert watermark_days(moto_endpoint, dest) == [dt.date(2024, 8, 21)]

    # GIVEN a new job and a late version of an archived job arrive in a recent day, a day later
    late = {
        standard_key("5234", "234", DAY2, "j-new", f"{DAY2}150000", "succeeded"): job_body("j-new"),
        standard_key("5234", "234", DAY2, f"j-{DAY2}-0", f"{DAY2}160000", "failed"): job_body(
            f"j-{DAY2}-0", status="failed", title="retried", completed_at="2024-08-21T16:00:00Z"
        ),
    }
    put_objects(moto_endpoint, source, late)
    tomorrow = today + dt.timedelta(days=1)
    # WHEN another plain compact runs
    second = archive(moto_endpoint, source, dest, clock=lambda: at(tomorrow))
    # THEN its lookback still reaches the recent day, and both objects are archived
    assert second.failures == []
    assert second.window["since"] is not None
    assert dt.date.fromisoformat(second.window["since"]) <= dt.date(2024, 8, 21)
    assert second.objects_archived == 2
    assert second.rows["jobs"] == 2
    assert second.future_days == ["day=2999-12-31"]
    jobs = {
        row["job_id"]: row for row in committed_rows(download(moto_endpoint, dest, tmp_path / "2"), "jobs")
    }
    assert len(jobs) == 7
    assert jobs["j-new"]["source_key"] in late
    assert (jobs[f"j-{DAY2}-0"]["status"], jobs[f"j-{DAY2}-0"]["title"]) == ("failed", "retried")
    assert jobs[f"j-{FUTURE}-0"]["date"] == dt.date(2999, 12, 31)
    # AND the watermark is still the newest real day
    assert watermark_days(moto_endpoint, dest) == [dt.date(2024, 8, 21)]


def test_a_future_day_folder_hides_no_real_day_of_a_source_whose_newest_day_is_long_past(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a replay of an old export (two days of August 2024) beside a stray 2999-12-31 folder,
    # archived by a plain compact on a clock that says 2025-03-10
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    objects = {
        standard_key("5234", "234", day, f"j-{day}-{n}", f"{day}100000", "succeeded"): job_body(
            f"j-{day}-{n}"
        )
        for day in (DAY1, DAY2, FUTURE)
        for n in range(2)
    }
    put_objects(moto_endpoint, source, objects)
    today = dt.date(2025, 3, 10)
    first = archive(moto_endpoint, source, dest, clock=lambda: at(today))
    assert first.failures == [] and first.objects_archived == 6
    assert first.future_days == ["day=2999-12-31"]
    # THEN the watermark is the newest real day, not today + 1 day
    assert watermark_days(moto_endpoint, dest) == [dt.date(2024, 8, 21)]

    # GIVEN five new jobs of the next day of the export arrive
    new_day = "20240822"
    fresh = {
        standard_key("5234", "234", new_day, f"j-new-{n}", f"{new_day}100000", "succeeded"): job_body(
            f"j-new-{n}"
        )
        for n in range(5)
    }
    put_objects(moto_endpoint, source, fresh)
    # WHEN the next plain compact runs, a day later
    second = archive(moto_endpoint, source, dest, clock=lambda: at(today + dt.timedelta(days=1)))
    # THEN its lookback reaches the new day, and all five are archived
    assert second.failures == []
    assert second.window["since"] == "2024-08-14"
    assert second.objects_archived == 5
    jobs = {
        row["job_id"]: row for row in committed_rows(download(moto_endpoint, dest, tmp_path / "2"), "jobs")
    }
    assert sorted(jobs) == sorted(
        [f"j-{day}-{n}" for day in (DAY1, DAY2, FUTURE) for n in range(2)] + [f"j-new-{n}" for n in range(5)]
    )
    assert {jobs[f"j-new-{n}"]["source_key"] for n in range(5)} == set(fresh)
    assert watermark_days(moto_endpoint, dest) == [dt.date(2024, 8, 22)]
    # AND a rerun reads and writes nothing
    third = archive(moto_endpoint, source, dest, clock=lambda: at(today + dt.timedelta(days=1)))
    assert third.failures == []
    assert (third.requests["get"], third.requests["put"], third.objects_archived) == (0, 0, 0)


# --------------------------------------------------------------------------- ids


BIG_ID = 123456789012345678901  # above 2**64: a JSON parser that reads it as a float loses digits


def test_a_21_digit_job_id_is_stored_exactly_and_the_run_says_which_body_disagreed(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an embedded-layout object whose key folders hold the 21-digit id and whose body holds it
    # as a JSON integer, a standard-layout object whose body names another id than its key, and a
    # control object whose body agrees with its key
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    big = embedded_key("5234", "234", DAY1, BIG_ID, f"{DAY1}000000", "succeeded")
    assert big == (
        "5234/jobs/234/20240820/123/456/789/012/345/678/901/"
        "5234-234-123456789012345678901-20240820000000-succeeded.json"
    )
    renamed = standard_key("5234", "234", DAY1, "j-KEY", f"{DAY1}000000", "succeeded")
    agreeing = embedded_key("5234", "234", DAY1, 98765, f"{DAY1}000000", "succeeded")
    put_objects(
        moto_endpoint,
        source,
        {big: job_body(BIG_ID, lines=3), renamed: job_body("j-BODY"), agreeing: job_body(98765)},
    )
    assert f'"id": {BIG_ID},'.encode() in job_body(BIG_ID)
    # WHEN the source is archived
    report = archive(moto_endpoint, source, dest)
    # THEN the jobs table holds the key's ids exactly, as text, and the lines carry them too
    assert report.failures == []
    folder = download(moto_endpoint, dest, tmp_path / "archive")
    jobs = jobs_by_id(committed_rows(folder, "jobs"))
    assert sorted(jobs) == [("5234", "123456789012345678901"), ("5234", "98765"), ("5234", "j-KEY")]
    assert jobs[("5234", "123456789012345678901")]["source_key"] == big
    assert jobs[("5234", "j-KEY")]["source_key"] == renamed
    lines = committed_rows(folder, "job_lines")
    assert sorted((row["job_id"], row["line_index"]) for row in lines if row["source_key"] == big) == [
        ("123456789012345678901", index) for index in range(3)
    ]
    # AND the report says which body disagreed with its key and that the key won; the 21-digit
    # body id, read digit for digit, agrees with its key
    summary = report.as_dict()
    assert summary["id_conflicts"] == 1
    assert summary["notes"] == ["job id in body j-BODY differs from key j-KEY; key kept"]


def test_two_workspaces_with_the_same_numeric_job_id_are_two_jobs(moto_endpoint: str, tmp_path: Path) -> None:
    # GIVEN job 100 in workspace 5234 and job 100 in workspace 6000, on the same day
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    ours = embedded_key("5234", "234", DAY1, 100, f"{DAY1}100000", "succeeded")
    theirs = embedded_key("6000", "777", DAY1, 100, f"{DAY1}100000", "succeeded")
    etags = put_objects(
        moto_endpoint,
        source,
        {
            ours: job_body(100, title="ours", lines=2),
            theirs: job_body(100, recipe_id=777, title="theirs", lines=3),
        },
    )
    # WHEN the source is archived
    first = archive(moto_endpoint, source, dest)
    # THEN there are two rows in jobs, one per workspace, and the report counts two jobs
    assert first.failures == []
    assert first.rows["jobs"] == 2 and first.rows["job_lines"] == 5
    folder = download(moto_endpoint, dest, tmp_path / "first")
    jobs = jobs_by_id(committed_rows(folder, "jobs"))
    assert {job: (row["title"], row["source_key"], row["source_etag"]) for job, row in jobs.items()} == {
        ("5234", "100"): ("ours", ours, etags[ours]),
        ("6000", "100"): ("theirs", theirs, etags[theirs]),
    }
    lines = committed_rows(folder, "job_lines")
    assert sorted((row["source_key"], row["job_id"]) for row in lines) == sorted(
        [(ours, "100")] * 2 + [(theirs, "100")] * 3
    )

    # GIVEN a later version of workspace 6000's job 100
    later = embedded_key("6000", "777", DAY1, 100, f"{DAY1}120000", "failed")
    later_etag = put_objects(
        moto_endpoint,
        source,
        {
            later: job_body(
                100, recipe_id=777, status="failed", title="theirs again", completed_at="2024-08-20T12:00:00Z"
            )
        },
    )[later]
    # WHEN the archiver runs again
    second = archive(moto_endpoint, source, dest)
    # THEN only that job's row is replaced; workspace 5234's job 100 is untouched, lines included
    assert second.failures == []
    assert second.objects_archived == 1
    assert second.rows["jobs"] == 1 and second.rows["job_lines"] == 2
    folder = download(moto_endpoint, dest, tmp_path / "second")
    jobs = jobs_by_id(committed_rows(folder, "jobs"))
    assert {
        job: (row["status"], row["title"], row["source_key"], row["source_etag"]) for job, row in jobs.items()
    } == {
        ("5234", "100"): ("succeeded", "ours", ours, etags[ours]),
        ("6000", "100"): ("failed", "theirs again", later, later_etag),
    }
    lines = committed_rows(folder, "job_lines")
    assert sorted((row["source_key"], row["job_id"]) for row in lines) == sorted(
        [(ours, "100")] * 2 + [(later, "100")] * 2
    )


# --------------------------------------------------------------------------- one failing unit


def three_days(tag: str, jobs: int = 2) -> dict[str, bytes]:
    """`jobs` new jobs in each of three days."""
    return {
        standard_key("5234", "234", day, f"j-{tag}-{day}-{n}", f"{day}100000", "succeeded"): job_body(
            f"j-{tag}-{day}-{n}"
        )
        for day in (DAY1, DAY2, "20240822")
        for n in range(jobs)
    }


BROKEN_UNIT = "day=2024-08-21"


def broken_head(endpoint: str, dest: str) -> str:
    return ledger.head_key(BROKEN_UNIT)


def broken_segment(endpoint: str, dest: str) -> str:
    (key,) = [
        key
        for key in bucket_keys(endpoint, dest, ledger.unit_prefix(BROKEN_UNIT))
        if key.rsplit("/", 1)[-1].startswith(ledger.SEGMENT_PREFIX)
    ]
    return key


def garbage(good: bytes) -> bytes:
    return good[: len(good) // 2]


def another_days_split(good: bytes) -> bytes:
    """A head copied in from another day: its children are not units of this day."""
    head = json.loads(good)
    head["children"] = [{"unit": "day=2024-08-20.0", "lo": ""}, {"unit": "day=2024-08-20.1", "lo": "6"}]
    return json.dumps(head).encode()


@pytest.mark.parametrize(
    ("which", "corrupt"),
    [
        pytest.param(broken_head, garbage, id="head-not-json"),
        pytest.param(broken_segment, garbage, id="segment-not-parquet"),
        pytest.param(broken_head, another_days_split, id="head-with-another-days-split"),
    ],
)
def test_a_malformed_ledger_file_fails_only_its_unit_and_the_next_run_completes(
    which: Callable[[str, str], str], corrupt: Callable[[bytes], bytes], moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an archive of three days, new jobs in each day, and a ledger file of the middle day broken
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, three_days("old"))
    assert archive(moto_endpoint, source, dest).failures == []
    new = three_days("new")
    put_objects(moto_endpoint, source, new)
    broken = which(moto_endpoint, dest)
    good = get_object(moto_endpoint, dest, broken)
    put_objects(moto_endpoint, dest, {broken: corrupt(good)})
    env = cli_env(moto_endpoint, ARCHIVER_RETIRE_GRACE_SECONDS="0")
    # WHEN compact runs from the command line
    result = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    # THEN it exits 4 with one line naming the unit, no traceback, and the report names it too
    line = one_error_line(result, 4, stdout=None)
    assert BROKEN_UNIT in line
    report = single_report(result)
    assert [failure["unit"] for failure in report["failures"]] == [BROKEN_UNIT]  # type: ignore[index,union-attr]
    # AND the other two days committed their new jobs; the broken day's are not archived yet
    jobs = {
        row["source_key"]
        for row in committed_rows(download(moto_endpoint, dest, tmp_path / "1"), "jobs", skip_broken=True)
        if "-new-" in row["source_key"]
    }
    assert jobs == {key for key in new if "/20240821/" not in key}

    # GIVEN the file is put back
    put_objects(moto_endpoint, dest, {broken: good})
    # WHEN compact runs again
    again = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    # THEN it completes, and the archive is the one a clean run makes
    assert again.returncode == 0, again.stderr
    assert single_report(again)["objects_archived"] == 2
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")


@pytest.fixture
def fault_proxy(moto_endpoint: str) -> Iterator[Callable[..., FaultProxy]]:
    """Start fault-injecting proxies in front of the moto server; all stop at teardown."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> FaultProxy:
            return stack.enter_context(FaultProxy(moto_endpoint, **options))

        yield start


def always_fails(bucket: str, key: str, fault: str = INTERNAL) -> Rule:
    """A proxy rule: every GetObject of `bucket/key` answers `fault`; everything else passes."""
    path = f"/{bucket}/{key}"
    return lambda request: fault if request.is_object_read and request.path == path else "pass"


def test_an_object_that_always_fails_to_read_holds_up_nothing_else(
    moto_endpoint: str, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    # GIVEN an archive of three days, new jobs in each, and one new object whose every GET answers 500
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    put_objects(moto_endpoint, source, three_days("old"))
    assert archive(moto_endpoint, source, dest).failures == []
    new = three_days("new")
    put_objects(moto_endpoint, source, new)
    victim = standard_key("5234", "234", DAY2, f"j-new-{DAY2}-0", f"{DAY2}100000", "succeeded")
    assert victim in new
    proxy = fault_proxy(rate=0.0, rule=always_fails(source, victim))
    env = cli_env(proxy.endpoint, AWS_MAX_ATTEMPTS="2", ARCHIVER_RETIRE_GRACE_SECONDS="0")
    # WHEN compact runs from the command line through the proxy
    result = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    # THEN it exits 4 with one line naming the object, and the report names it
    line = one_error_line(result, 4, stdout=None)
    assert victim in line
    report = single_report(result)
    assert report["objects_failed"] == 1
    assert report["failures"] == [{"key": victim, "error": ANY, "kind": ANY}]
    assert proxy.log.faults.get(INTERNAL, 0) >= 2
    # AND every other new object is archived, those of the victim's own day included
    archived = {
        row["source_key"] for row in committed_rows(download(moto_endpoint, dest, tmp_path / "1"), "jobs")
    }
    assert archived & set(new) == set(new) - {victim}

    # WHEN the object can be read again and compact runs once more
    again = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    # THEN it reads just that object and completes; the archive is the one a clean run makes
    assert again.returncode == 0, again.stderr
    retry = single_report(again)
    assert retry["objects_archived"] == 1
    assert retry["requests"]["get"] >= 1  # type: ignore[index]
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")


STRAYS = {
    "5234/jobs/234/notes.txt": b"stray notes between the day folders",
    "5234/jobs/234/2024xx/readme.json": b'{"note": "not a day"}',
    "5234/jobs/234/2024xx/j-9/5234-234-j-9-20240820100000-succeeded.json": job_body("j-9"),
    "5234/jobs/234/20240899/j-8/5234-234-j-8-20240899100000-succeeded.json": job_body("j-8"),
    "5234/jobs/234/20240820": b"an object named like a day folder",
    "5234/jobs/234/20240821/": b"",  # a console-made "folder" marker
    "5234/jobs/234/20240820/j-old-20240820-0/": b"",
    "5234/jobs/234/20240820/stray.json": b'{"note": "loose in a day folder"}',
    "5234/jobs/notes.txt": b"more notes",
    "5234/readme.json": b"[]",
}


def test_stray_files_between_day_folders_break_nothing(moto_endpoint: str, tmp_path: Path) -> None:
    # GIVEN three days of jobs and stray files and folders among them
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    jobs = three_days("old")
    put_objects(moto_endpoint, source, {**jobs, **STRAYS})
    # WHEN compact runs from the command line
    result = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    # THEN it exits 0, every job is archived, and every stray object is accounted for
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = single_report(result)
    assert report["failures"] == []
    assert report["objects_listed"] == len(jobs) + len(STRAYS)
    assert report["objects_listed"] == (
        report["objects_archived"] + report["objects_skipped"] + report["objects_quarantined"]
    )
    folder = download(moto_endpoint, dest, tmp_path / "archive")
    archived = {row["source_key"] for row in committed_rows(folder, "jobs")}
    assert set(jobs) <= archived
    quarantined = {row["source_key"] for row in committed_rows(folder, "quarantine")}
    json_strays = {key for key in STRAYS if key.endswith(".json")}
    assert json_strays <= archived | quarantined
    # AND verify agrees, and a rerun has nothing to do
    checked = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    assert checked.returncode == 0, checked.stderr
    rerun = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    assert rerun.returncode == 0, rerun.stderr
    assert single_report(rerun)["objects_archived"] == 0


# --------------------------------------------------------------------------- a failed re-read


def test_a_failed_re_read_of_an_older_version_keeps_the_jobs_row_until_the_next_run(
    moto_endpoint: str, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> None:
    # GIVEN job j-A archived from two versions (failed at 10:00, then succeeded at 11:00: the winner)
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    older = standard_key("5234", "234", DAY1, "j-A", f"{DAY1}100000", "failed")
    winner = standard_key("5234", "234", DAY1, "j-A", f"{DAY1}110000", "succeeded")
    other = standard_key("5234", "234", DAY1, "j-B", f"{DAY1}100000", "succeeded")
    etags = put_objects(
        moto_endpoint,
        source,
        {
            older: job_body("j-A", status="failed", title="first try", lines=1),
            winner: job_body("j-A", title="second try", completed_at="2024-08-20T11:00:00Z", lines=3),
            other: job_body("j-B"),
        },
    )
    assert archive(moto_endpoint, source, dest).failures == []
    # AND then the winner's key rewritten with an earlier state (still running: the failed version must
    # win again), a new job in the same unit, and every GET of the older version failing
    newcomer = standard_key("5234", "234", DAY1, "j-C", f"{DAY1}120000", "succeeded")
    put_objects(
        moto_endpoint,
        source,
        {
            winner: job_body("j-A", status="running", title="rerun", completed_at=None),
            newcomer: job_body("j-C"),
        },
    )
    proxy = fault_proxy(rate=0.0, rule=always_fails(source, older))
    # WHEN compact runs with the source behind the proxy
    report = run_compact(s3_store(source, proxy.endpoint, max_attempts=2), s3_store(dest, moto_endpoint))
    # THEN the run names the object it could not re-read
    assert report.failed_keys == [older]
    assert report.objects_failed == 1
    # AND j-A keeps the row it had (nothing lost), while the new job was committed
    folder = download(moto_endpoint, dest, tmp_path / "faulted")
    jobs = {row["job_id"]: row for row in committed_rows(folder, "jobs")}
    assert sorted(jobs) == ["j-A", "j-B", "j-C"]
    assert (jobs["j-A"]["source_key"], jobs["j-A"]["source_etag"], jobs["j-A"]["title"]) == (
        winner,
        etags[winner],
        "second try",
    )
    lines = [row for row in committed_rows(folder, "job_lines") if row["job_id"] == "j-A"]
    assert sorted((row["source_key"], row["line_index"]) for row in lines) == [(winner, i) for i in range(3)]
    # AND verify, meanwhile, reports the rewritten key as stale and exits 5
    checked = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    assert checked.returncode == 5, checked.stderr
    verdict = single_report(checked)
    assert verdict["ok"] is False
    assert verdict["stale"] == [winner]
    assert verdict["not_archived"] == [] and verdict["missing_files"] == [] and verdict["orphan_files"] == []

    # WHEN the older version can be read again and compact runs once more
    retry = archive(moto_endpoint, source, dest)
    # THEN the failed version wins again, and the archive is the one a clean run makes
    assert retry.failures == []
    jobs = {
        row["job_id"]: row for row in committed_rows(download(moto_endpoint, dest, tmp_path / "2"), "jobs")
    }
    assert (jobs["j-A"]["source_key"], jobs["j-A"]["status"], jobs["j-A"]["title"]) == (
        older,
        "failed",
        "first try",
    )
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")
    checked = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    assert checked.returncode == 0, checked.stderr


# ------------------------------------------------------------------ superseded files, grace period

GRACE = replace(SETTINGS, retire_grace_seconds=3600)
T0 = at(dt.date(2024, 8, 21))


def minutes_after_t0(minutes: int) -> Callable[[], dt.datetime]:
    return lambda: T0 + dt.timedelta(minutes=minutes)


@dataclass(frozen=True, slots=True)
class Superseded:
    """An archive whose last commit rewrote its files, keeping the old ones through the grace period."""

    source: str
    dest: str
    retired: set[str]  # the files the late version's commit stopped referring to
    rows: dict[str, list[str]]  # their rows as they were, by file


def supersede(endpoint: str, scratch: Path) -> Superseded:
    """Archive three running jobs at T0, then a late version of one of them five minutes later."""
    source, dest = new_bucket(endpoint), new_bucket(endpoint)
    put_objects(
        endpoint,
        source,
        {
            standard_key("5234", "234", DAY1, f"j-{n}", f"{DAY1}100000", "running"): job_body(
                f"j-{n}", status="running", completed_at=None
            )
            for n in range(3)
        },
    )
    assert archive(endpoint, source, dest, GRACE, clock=minutes_after_t0(0)).failures == []
    before = download(endpoint, dest, scratch / "before")
    first_files = committed_files(before)
    late = standard_key("5234", "234", DAY1, "j-1", f"{DAY1}110000", "succeeded")
    put_objects(endpoint, source, {late: job_body("j-1", title="done")})
    report = archive(endpoint, source, dest, GRACE, clock=minutes_after_t0(5))
    assert report.failures == [] and report.objects_archived == 1
    (head,) = heads(download(endpoint, dest, scratch / "after")).values()
    retired = {item.key for item in head.retired}
    assert retired and retired <= first_files and not retired & head.file_keys()
    return Superseded(source, dest, retired, {key: canonical(file_rows(before / key)) for key in retired})


def test_a_superseded_file_stays_readable_through_the_grace_period_and_is_no_orphan(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a late version whose commit rewrote the files holding its job, with a grace period of an hour
    case = supersede(moto_endpoint, tmp_path)
    # WHEN the archive is looked at ten minutes later
    folder = download(moto_endpoint, case.dest, tmp_path / "during")
    # THEN the old files are still there, whole, with the rows they held
    for key in case.retired:
        assert canonical(file_rows(folder / key)) == case.rows[key]
    # AND the committed view holds one row per job, the late version's for j-1
    jobs = jobs_by_id(committed_rows(folder, "jobs"))
    assert jobs[("5234", "j-1")]["title"] == "done"
    assert len(jobs) == 3
    # AND verify does not count the waiting files as orphans
    checked = archiver_cli(
        ["verify", f"s3://{case.source}/", f"s3://{case.dest}/", "--json"], cli_env(moto_endpoint)
    )
    assert checked.returncode == 0, checked.stderr
    verdict = single_report(checked)
    assert verdict["orphan_files"] == [] and verdict["ok"] is True
    # AND a run still inside the grace period deletes nothing
    new = standard_key("5234", "234", DAY1, "j-9", f"{DAY1}120000", "succeeded")
    put_objects(moto_endpoint, case.source, {new: job_body("j-9")})
    inside = archive(moto_endpoint, case.source, case.dest, GRACE, clock=minutes_after_t0(30))
    assert inside.failures == [] and inside.objects_archived == 1
    assert case.retired <= set(bucket_keys(moto_endpoint, case.dest))


def test_a_commit_after_the_grace_period_deletes_the_superseded_files(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN superseded files waiting out an hour's grace
    case = supersede(moto_endpoint, tmp_path)
    # WHEN a new object arrives and compact runs two hours later
    new = standard_key("5234", "234", DAY1, "j-9", f"{DAY1}120000", "succeeded")
    put_objects(moto_endpoint, case.source, {new: job_body("j-9")})
    later = archive(moto_endpoint, case.source, case.dest, GRACE, clock=minutes_after_t0(120))
    # THEN the superseded files are gone, no head names them, and the archive is the clean one
    assert later.failures == []
    assert not case.retired & set(bucket_keys(moto_endpoint, case.dest))
    folder = download(moto_endpoint, case.dest, tmp_path / "later")
    assert all(not head.retired for head in heads(folder).values())
    assert_same_as_clean(moto_endpoint, case.source, case.dest, tmp_path / "final")


def test_a_run_after_the_grace_period_deletes_superseded_files_even_with_nothing_new(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN superseded files waiting out an hour's grace, and no new object since
    case = supersede(moto_endpoint, tmp_path)
    # WHEN compact runs two hours later
    later = archive(moto_endpoint, case.source, case.dest, GRACE, clock=minutes_after_t0(120))
    # THEN the superseded files are gone, no head names them, and the archive is the clean one
    assert later.failures == []
    assert not case.retired & set(bucket_keys(moto_endpoint, case.dest))
    folder = download(moto_endpoint, case.dest, tmp_path / "later")
    assert all(not head.retired for head in heads(folder).values())
    assert_same_as_clean(moto_endpoint, case.source, case.dest, tmp_path / "final")
    # AND with nothing left to wait for, the next run is a no-op that costs LISTs only
    after = archive(moto_endpoint, case.source, case.dest, GRACE, clock=minutes_after_t0(180))
    assert (after.requests["get"], after.requests["put"], after.requests["delete"]) == (0, 0, 0)


# --------------------------------------------------------------------------- a data file deleted by mistake


def jobs_files(endpoint: str, dest: str, day: str) -> list[str]:
    return sorted(key for key in bucket_keys(endpoint, dest, f"jobs/date={day}/") if key.endswith(".parquet"))


def test_a_data_file_deleted_by_mistake_is_repaired_from_the_source(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN an archive of three days, and the jobs file of one committed day deleted from it
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    jobs = three_days("old", jobs=3)
    put_objects(moto_endpoint, source, jobs)
    assert archive(moto_endpoint, source, dest).failures == []
    (lost,) = jobs_files(moto_endpoint, dest, "2024-08-21")
    delete_objects(moto_endpoint, dest, [lost])
    # WHEN compact runs again from the command line, the source unchanged
    env = cli_env(moto_endpoint, ARCHIVER_RETIRE_GRACE_SECONDS="0")
    result = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)
    # THEN it exits 0, the day's rows are back, every file a head names exists, and the archive is
    # the one a clean run makes
    assert result.returncode == 0, result.stderr
    folder = download(moto_endpoint, dest, tmp_path / "repaired")
    assert {row["source_key"] for row in committed_rows(folder, "jobs")} == set(jobs)
    assert_same_as_clean(moto_endpoint, source, dest, tmp_path / "final")
    checked = archiver_cli(["verify", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    assert checked.returncode == 0, checked.stderr


def test_a_deleted_data_file_whose_sources_are_gone_is_reported_and_holds_up_nothing_else(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a day archived in two commits (jobs j-0 and j-1, then j-2: two jobs files), then the first
    # commit's jobs file deleted from the archive and its two source objects expired from the source
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    first = {
        standard_key("5234", "234", DAY1, f"j-{n}", f"{DAY1}100000", "succeeded"): job_body(f"j-{n}")
        for n in range(2)
    }
    put_objects(moto_endpoint, source, first)
    assert archive(moto_endpoint, source, dest).failures == []
    (gone,) = jobs_files(moto_endpoint, dest, "2024-08-20")
    kept = standard_key("5234", "234", DAY1, "j-2", f"{DAY1}110000", "succeeded")
    put_objects(moto_endpoint, source, {kept: job_body("j-2")})
    assert archive(moto_endpoint, source, dest).failures == []
    assert gone in jobs_files(moto_endpoint, dest, "2024-08-20")
    delete_objects(moto_endpoint, dest, [gone])
    delete_objects(moto_endpoint, source, first)
    # AND a new job in another day
    other = standard_key("5234", "234", DAY2, "j-other", f"{DAY2}100000", "succeeded")
    put_objects(moto_endpoint, source, {other: job_body("j-other")})
    # WHEN compact runs from the command line
    result = archiver_cli(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], cli_env(moto_endpoint))
    # THEN it exits 4 with one line naming the keys whose rows it cannot restore, and the report names
    # them and the missing file
    line = one_error_line(result, 4, stdout=None)
    assert all(key in line for key in first), line
    report = single_report(result)
    assert sorted(failure["key"] for failure in report["failures"]) == sorted(first)  # type: ignore[union-attr]
    assert report["missing_files"] == [gone]
    # AND the other day committed, and the rows that could be kept are still there
    folder = download(moto_endpoint, dest, tmp_path / "after")
    archived = {row["source_key"] for row in committed_rows(folder, "jobs", skip_broken=True)}
    assert {other, kept} <= archived
