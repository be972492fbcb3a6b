"""Shard processes: their reports merged into one, and a shard whose process died named as a failure."""

from __future__ import annotations

import signal

from archiver.engine.processes import _lost_shard, merge
from archiver.engine.report import RunReport


def _shard_report(listed: int, day: str, gets: int) -> RunReport:
    report = RunReport(objects_listed=listed, objects_archived=listed - 1, units=1)
    report.add_rows({"jobs": listed})
    report.requests = {"list": 2, "get": gets}
    report.add_store_use("source", {"list": 2, "get": gets, "bytes_read": gets * 10})
    report.days = [day]
    report.future_days = [day] if day.startswith("day=2999") else []
    report.window = {"since": None, "until": None}
    return report


def test_merge_adds_counts_and_joins_lists() -> None:
    # GIVEN two shards' reports
    first, second = _shard_report(10, "day=2024-08-20", 9), _shard_report(5, "day=2999-12-31", 4)
    # WHEN they are merged
    merged = merge([first, second])
    # THEN counts add up, per-table rows and per-store requests too, and lists are joined
    assert (merged.objects_listed, merged.objects_archived, merged.units) == (15, 13, 2)
    assert merged.rows["jobs"] == 15
    assert merged.requests == {"list": 4, "get": 13}
    assert merged.by_store == {"source": {"list": 4, "get": 13, "bytes_read": 130}}
    assert merged.days == ["day=2024-08-20", "day=2999-12-31"]
    assert merged.future_days == ["day=2999-12-31"]
    assert merged.window == {"since": None, "until": None}


def test_a_shard_killed_by_a_signal_is_a_named_failure() -> None:
    failure = _lost_shard(1, 4, -signal.SIGKILL)
    assert failure == {
        "unit": "shard=2/4",
        "error": "its worker process died (killed by signal 9) before reporting",
        "kind": "WorkerProcessDied",
    }
    assert "exit 1" in _lost_shard(0, 2, 1)["error"]
