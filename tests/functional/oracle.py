"""What an archive's tables must hold, judged against the synthetic corpus's independent truth."""

from __future__ import annotations

from collections import Counter
from typing import Any

from archiver.formats.layout import parse_key
from archiver.local.synth import ExpectedArchive


def assert_final_jobs(rows: list[dict[str, Any]], expected: ExpectedArchive) -> None:
    """One `jobs` row per job, and it is the final version, field by field."""
    assert len(rows) == len({row["job_id"] for row in rows}) == len(expected.finals)
    got = {(row["job_id"], row["status"], row["line_count"], row["lines_truncated"]) for row in rows}
    assert got == set(expected.jobs)
    for row in rows:
        truth = expected.finals[row["job_id"]]
        assert row["date"] == truth.day
        assert row["user_id"] == truth.user_id
        assert row["recipe_id"] == truth.recipe_id
        assert row["source_key"].startswith(f"{truth.user_id}/jobs/")
        key = parse_key(row["source_key"])
        assert key is not None and key.job_id == row["job_id"] and key.layout == truth.layout
        assert row["source_etag"]
        if truth.started_us is not None:
            assert int(row["started_at"].timestamp() * 1_000_000) == truth.started_us
        if truth.completed_us is not None:
            assert int(row["completed_at"].timestamp() * 1_000_000) == truth.completed_us
        if truth.error_type is not None:
            assert row["error_type"] == truth.error_type
    assert Counter(row["date"] for row in rows) == Counter(expected.jobs_by_day)
