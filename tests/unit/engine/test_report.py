"""The run report: the contract's JSON object, failures by unit and key, capped lists."""

from __future__ import annotations

from archiver.engine.report import MAX_LISTED, RunReport


def test_as_dict_carries_every_count_and_list() -> None:
    # GIVEN a report of a run with a unit failure, a key failure and notes
    report = RunReport(objects_listed=10, objects_archived=7, objects_skipped=1, objects_quarantined=1)
    report.objects_failed = 1
    report.add_rows({"jobs": 7, "job_lines": 20})
    report.add_rows({"jobs": 1, "activity": 3})
    report.failures = [
        {
            "unit": "day=2024-08-20.1",
            "error": "malformed ledger head (JSONDecodeError)",
            "kind": "LedgerFormatError",
        },
        {"key": "5234/jobs/77/20240820/100/x.json", "error": "SlowDown", "kind": "StorageError"},
    ]
    report.notes = ["job id in body 1 differs from key 2; key kept"]
    report.units_left = ["day=2024-08-21"]
    report.future_days = ["day=2999-12-31"]
    report.window = {"since": "2024-08-14", "until": None}
    report.seconds = 1.23456
    # WHEN it is turned into the JSON object
    out = report.as_dict()
    # THEN the counts are as counted, failures are split by unit and key
    assert out["rows"] == {"jobs": 8, "job_lines": 20, "activity": 3}
    assert (out["objects_listed"], out["objects_archived"], out["objects_failed"]) == (10, 7, 1)
    assert out["units_failed"] == 1 and report.failed_units == ["day=2024-08-20.1"]
    assert report.failed_keys == ["5234/jobs/77/20240820/100/x.json"]
    assert out["id_conflicts"] == 1 and out["notes"] == report.notes
    assert out["units_left"] == ["day=2024-08-21"] and out["future_days"] == ["day=2999-12-31"]
    assert out["window"] == {"since": "2024-08-14", "until": None}
    assert out["seconds"] == 1.235
    # AND the lists in it are copies
    assert out["failures"] is not report.failures and out["failures"] == report.failures


def test_long_lists_are_capped_but_counted() -> None:
    report = RunReport()
    report.failures = [{"key": f"k{i}", "error": "x", "kind": "StorageError"} for i in range(MAX_LISTED + 5)]
    report.notes = [f"note {i}" for i in range(MAX_LISTED + 2)]
    out = report.as_dict()
    assert len(out["failures"]) == MAX_LISTED  # type: ignore[arg-type]
    assert len(out["notes"]) == MAX_LISTED  # type: ignore[arg-type]
    assert out["id_conflicts"] == MAX_LISTED + 2


def test_a_fresh_report_has_zero_rows_for_every_table() -> None:
    assert RunReport().as_dict()["rows"] == {"jobs": 0, "job_lines": 0, "activity": 0}
    assert RunReport().as_dict()["units_failed"] == 0


def test_store_use_adds_up_per_store_across_reports() -> None:
    # GIVEN a report that two shards' store counts are added to
    report = RunReport()
    report.add_store_use("source", {"get": 3, "list": 1, "bytes_read": 300})
    report.add_store_use("dest", {"put": 2, "bytes_written": 50})
    report.add_store_use("source", {"get": 4, "list": 1, "bytes_read": 100})
    # WHEN it is turned into the JSON object
    out = report.as_dict()
    # THEN each store's requests and bytes are summed on their own
    assert out["by_store"] == {
        "source": {"get": 7, "list": 2, "bytes_read": 400},
        "dest": {"put": 2, "bytes_written": 50},
    }
