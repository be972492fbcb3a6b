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
    embedded_key,
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


# --------------------------------------------------------------------------- ids past 2**64


def test_ids_past_2_64_keep_every_digit_in_every_column_whatever_their_json_form(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN jobs in the embedded layout whose master, parent and calling job ids are JSON numbers past
    # 2**64, written as integers, with a ".0" and in exponent form, and a 21-digit error id
    source, dest = new_bucket(moto_endpoint), new_bucket(moto_endpoint)
    ids = {
        "master_job_id": "98765432109876543210",
        "parent_job_id": "98765432109876543211",
        "calling_job_id": "98765432109876543213",
        "calling_recipe_id": "98765432109876543217",
        "error_id": "98765432109876543219",
    }
    forms = {
        "integer": lambda digits: digits,
        "point-zero": lambda digits: digits + ".0",
        "exponent": lambda digits: f"{digits[0]}.{digits[1:]}e{len(digits) - 1}",
    }
    objects: dict[str, bytes] = {}
    for job_id, form in enumerate(forms.values(), start=101):
        job: dict[str, Any] = json.loads(job_body(job_id))
        job |= {name: f"@@{name}@@" for name in ("master_job_id", "calling_job_id", "calling_recipe_id")}
        job["parent_id"] = "@@parent_job_id@@"
        job["error"] = json.dumps({"error_id": "@@error_id@@", "message": "boom"})
        body = json.dumps(job)
        for name, digits in ids.items():
            body = body.replace(f'"@@{name}@@"', form(digits)).replace(f'\\"@@{name}@@\\"', form(digits))
        objects[embedded_key("5234", "234", "20240820", job_id, "20240820100000", "failed")] = body.encode()
    assert b"9.8765432109876543210e19" in b"".join(objects.values())
    put_objects(moto_endpoint, source, objects)
    # WHEN the source is archived
    first = archive(moto_endpoint, source, dest)
    # THEN every job's id columns hold the document's digits, as text
    assert first.failures == [] and first.objects_archived == 3
    jobs = jobs_by_id(committed_rows(download(moto_endpoint, dest, tmp_path / "first"), "jobs"))
    assert sorted(jobs) == [("5234", "101"), ("5234", "102"), ("5234", "103")]
    for row in jobs.values():
        assert {name: row[name] for name in ids} == ids
    # AND a rerun reads and writes nothing
    second = archive(moto_endpoint, source, dest)
    assert (second.requests["get"], second.requests["put"], second.objects_archived) == (0, 0, 0)
