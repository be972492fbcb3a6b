"""Scaling: one-day corpora of growing size (issue 7, "Tests and benchmark").

For each day (20k and 200k jobs; 1M with --million): a full run from a local folder into a
fresh archive, `plan SOURCE DEST` (how the day was split into units), a no-op rerun, then
a few new jobs added to the archived day and a rerun. Every figure comes from the run
report (--json) and the child's VmHWM, none from a timer: peak RSS must not grow with the
day, and the cost of adding k jobs (source GETs, bytes written, peak) must be O(k).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpora import parquet_bytes, write_late_jobs
from harness import WORK, child_env, fresh, log, run_child
from sections import check_rows, run_figures

LATE_JOBS = 5


@contextlib.contextmanager
def late_jobs_added(corpus: Path, count: int) -> Iterator[list[str]]:
    """`count` new jobs written into the cached corpus folder, removed again on exit."""
    stamp = corpus.with_name(f"{corpus.name}.stamp.json")
    recorded = stamp.read_bytes()
    stamp.unlink()
    keys: list[str] = []
    try:
        keys.extend(write_late_jobs(corpus, corpus, count))
        yield keys
    finally:
        for key in keys:
            path = corpus.joinpath(*key.split("/"))
            path.unlink(missing_ok=True)
            for folder in path.parents:
                if folder == corpus:
                    break
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only the empty folders made for the late job
        stamp.write_bytes(recorded)


def scale_day(corpus: dict[str, Any], late_jobs: int = LATE_JOBS) -> dict[str, Any]:
    """Full run, plan, no-op rerun, `late_jobs` new jobs and a rerun, on one one-day corpus.

    The runs read the cached corpus folder itself (linking 250,000 files elsewhere takes
    longer than archiving them); the late jobs are added to it for the last run and removed
    after, with the corpus's stamp set aside meanwhile so that an interrupted bench
    rewrites the corpus rather than reuse it with extra jobs.
    """
    name = corpus["name"]
    source = Path(corpus["path"])
    dest = fresh(WORK / f"{name}-archive")
    sampled = child_env({"BENCH_SAMPLE_TREE": "1"})  # the parse pool's memory too

    def run() -> dict[str, Any]:
        return run_child(["archiver", str(source), str(dest)], env=sampled)

    full = run()
    warnings = check_rows(f"{name} full run", full["report"], corpus)
    log(
        f"{name} full: peak {full['peak_rss_mb']:.0f} MB, {full['wall_seconds']:.1f}s, "
        f"units {full['report']['units']}"
    )
    planned = run_child(["plan", str(source), str(dest)], env=sampled)
    units = planned["units"]
    day_units = [unit for unit in units if str(unit["unit"]).startswith("day=")]
    log(f"{name} plan: {len(units)} units, {len(day_units)} of the job layout's day")
    noop = run()
    log(f"{name} no-op rerun: peak {noop['peak_rss_mb']:.0f} MB, requests {noop['report']['requests']}")
    with late_jobs_added(source, late_jobs) as keys:
        added = run()
    log(
        f"{name} +{late_jobs} jobs: peak {added['peak_rss_mb']:.0f} MB, "
        f"source {added.get('source_requests')}, {added['report']['bytes_written']:,} bytes written"
    )
    if added["report"]["objects_archived"] != late_jobs:
        warnings.append(f"+{late_jobs} jobs archived {added['report']['objects_archived']} objects")
    rows_before, rows_after = full["report"]["rows"]["jobs"], added["report"]["rows"]["jobs"]
    sizes = parquet_bytes(dest)
    shutil.rmtree(dest, ignore_errors=True)
    return {
        "corpus": name,
        "jobs": corpus["params"]["jobs"],
        "objects": corpus["objects"],
        "json_files": corpus["json_files"],
        "bytes": corpus["bytes"],
        "full": run_figures(full),
        "plan": {
            "units": len(units),
            "day_units": len(day_units),
            "day_unit_objects": [unit.get("objects") for unit in day_units],
            "unit_names": [unit["unit"] for unit in units],
            "peak_rss_mb": planned["peak_rss_mb"],
        },
        "noop": run_figures(noop),
        "added": {**run_figures(added), "late_jobs": late_jobs, "keys": keys, "rows_jobs_in_run": rows_after},
        "rows_jobs_full": rows_before,
        "archive": sizes,
        "warnings": warnings,
    }


def scaling_section(corpora: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`corpora`: label -> one-day corpus, smallest first; ratios are against the smallest."""
    days = {label: scale_day(corpus) for label, corpus in corpora.items()}
    base_label = next(iter(days))
    base = days[base_label]["full"]["peak_rss_mb"]
    ratios: dict[str, float] = {}
    for label, figures in days.items():
        if label != base_label:
            ratios[f"full {label} / full {base_label}"] = figures["full"]["peak_rss_mb"] / base
        ratios[f"+{LATE_JOBS} jobs into {label} / full {base_label}"] = figures["added"]["peak_rss_mb"] / base
    return {"base": base_label, "days": days, "peak_ratios": ratios, "late_jobs": LATE_JOBS}
