"""Ids keep every digit in every column, and a job's lines belong to its workspace (issue 13, items 6 and 9).

Every scenario runs over a real moto server on loopback; objects are written by hand
(`buckets.py`) with their numbers as raw JSON text, and archives are read back row by row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.functional.engine.buckets import (
    archive,
    committed_rows,
    download,
    job_body,
    jobs_by_id,
    new_bucket,
    put_objects,
)

# --------------------------------------------------------------------------- job_lines name the workspace


def job_of(user_id: int, job_id: int, **fields: Any) -> dict[str, Any]:
    """A job of `job_body` whose context names its workspace (the only place an export says it)."""
    job: dict[str, Any] = json.loads(job_body(job_id, **fields))
    job["context"] = {"user_id": user_id, "job_id": job_id}
    return job


def test_a_newer_version_of_one_workspaces_job_keeps_the_other_workspaces_lines_of_the_same_object(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN one export object (outside the key layout) holding job 100 of workspace 5234 (2 lines)
    # and job 100 of workspace 6000 (3 lines)
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    export = "exports/both.json"
    export_etag = put_objects(
        moto_endpoint,
        source,
        {
            export: json.dumps(
                {
                    "logEntries": [
                        job_of(5234, 100, title="ours", lines=2),
                        job_of(6000, 100, title="theirs", lines=3),
                    ]
                }
            ).encode()
        },
    )[export]
    first = archive(moto_endpoint, source, dest)
    assert first.failures == []
    assert first.rows == {"jobs": 2, "job_lines": 5, "activity": 0}
    lines = committed_rows(download(moto_endpoint, dest, tmp_path / "first"), "job_lines")
    assert sorted((row["user_id"], row["job_id"], row["line_index"]) for row in lines) == [
        ("5234", "100", 0),
        ("5234", "100", 1),
        ("6000", "100", 0),
        ("6000", "100", 1),
        ("6000", "100", 2),
    ]

    # WHEN a newer version of workspace 5234's job 100 arrives in another object and the archiver runs
    later = "exports/ours-again.json"
    later_etag = put_objects(
        moto_endpoint,
        source,
        {
            later: json.dumps(
                job_of(
                    5234,
                    100,
                    status="failed",
                    title="ours again",
                    completed_at="2024-08-20T12:00:00Z",
                    lines=1,
                )
            ).encode()
        },
    )[later]
    second = archive(moto_endpoint, source, dest)

    # THEN workspace 5234's job and lines come from the newer object, and workspace 6000's job 100
    # keeps its row and every one of its lines from the export
    assert second.failures == []
    folder = download(moto_endpoint, dest, tmp_path / "second")
    jobs = jobs_by_id(committed_rows(folder, "jobs"))
    assert {job: (row["title"], row["source_key"], row["source_etag"]) for job, row in jobs.items()} == {
        ("5234", "100"): ("ours again", later, later_etag),
        ("6000", "100"): ("theirs", export, export_etag),
    }
    lines = committed_rows(folder, "job_lines")
    assert sorted((row["user_id"], row["job_id"], row["line_index"], row["source_key"]) for row in lines) == [
        ("5234", "100", 0, later),
        ("6000", "100", 0, export),
        ("6000", "100", 1, export),
        ("6000", "100", 2, export),
    ]
    # AND a rerun reads and writes nothing
    third = archive(moto_endpoint, source, dest)
    assert (third.requests["get"], third.requests["put"], third.objects_archived) == (0, 0, 0)
