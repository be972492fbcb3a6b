"""The bench's throughput, moto, memory and incremental sections: each runs children and returns figures."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpora import link_tree, parquet_bytes, parseable_files
from harness import OUT, WORK, aws_env, child_env, fresh, log, median, run_child, total_cpu


def check_rows(label: str, report: dict[str, Any], corpus: dict[str, Any]) -> list[str]:
    """Warn (loudly, without failing) when the archive does not hold what the corpus says it must."""
    expected = corpus.get("expected", {})
    rows = report.get("rows", {})
    problems = [
        f"{table}: {rows.get(table)} rows, corpus says {expected[table]}"
        for table in ("jobs", "job_lines", "activity")
        if table in expected and rows.get(table) != expected[table]
    ]
    if "quarantined" in expected and report.get("objects_quarantined") != expected["quarantined"]:
        problems.append(
            f"quarantined {report.get('objects_quarantined')}, corpus says {expected['quarantined']}"
        )
    for problem in problems:
        print(f"!!! WARNING {label}: {problem}", file=sys.stderr, flush=True)
    return problems


def local_section(
    corpus: dict[str, Any], rounds: int, *, variants: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """Interleaved rounds over one corpus: the archiver (and its `variants`: name -> ARCHIVER_* env),
    DuckDB read_json_objects, DuckDB read_text, and the one-core read+parse floor."""
    root = Path(corpus["path"])
    tag = corpus["name"]
    listing = OUT / f"duckdb-files-{tag}.txt"
    parseable = parseable_files(root, listing)

    def writing(task: str, name: str, *extra: str) -> Callable[[int], list[str]]:
        return lambda r: [task, str(root), str(fresh(WORK / f"{tag}-{name}-{r}")), *extra]

    tasks: dict[str, tuple[Callable[[int], list[str]], dict[str, str] | None]] = {
        "archiver": (writing("archiver", "archiver"), None),
    }
    for name, extra in (variants or {}).items():
        tasks[name] = (writing("archiver", name), child_env(extra))
    tasks |= {
        "duckdb": (writing("duckdb", "duckdb", str(listing)), None),
        "duckdb_text": (writing("duckdb-text", "duckdb_text"), None),
        "floor": (lambda r: ["floor", str(root)], None),
    }
    run_child(["floor", str(root)])  # warm the page cache
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in tasks}
    for round_number in range(rounds):
        for name, (make_args, env) in tasks.items():
            result = run_child(make_args(round_number), env=env)
            runs[name].append(result)
            log(f"{tag} round {round_number + 1}/{rounds} {name}: {result['wall_seconds']:.2f}s")
        if round_number < rounds - 1:
            for name in tasks:
                shutil.rmtree(WORK / f"{tag}-{name}-{round_number}", ignore_errors=True)
    last = rounds - 1
    archive_sizes = parquet_bytes(WORK / f"{tag}-archiver-{last}")
    duckdb_sizes = parquet_bytes(WORK / f"{tag}-duckdb-{last}")
    archivers = ["archiver", *(variants or {})]
    warnings = [
        problem
        for name in archivers
        for problem in check_rows(f"{tag} {name}", runs[name][-1]["report"], corpus)
    ]
    for name in tasks:
        shutil.rmtree(WORK / f"{tag}-{name}-{last}", ignore_errors=True)

    files = corpus["json_files"]
    seconds = {name: median(run["wall_seconds"] for run in results) for name, results in runs.items()}
    rates = {name: files / value for name, value in seconds.items()}
    cores = os.cpu_count() or 1
    return {
        "corpus": tag,
        "files": files,
        "cores": cores,
        # What a perfect parse on every core would reach: the most any archiver could show here.
        "ceiling_over_duckdb": cores * rates["floor"] / rates["duckdb"],
        "bytes": corpus["bytes"],
        "duckdb_files": parseable,
        "rounds": rounds,
        "variants": {name: extra for name, extra in (variants or {}).items()},
        "seconds_median": seconds,
        "files_per_second": rates,
        "seconds_all": {
            name: [round(run["wall_seconds"], 3) for run in results] for name, results in runs.items()
        },
        "in_process_seconds_median": {
            name: median(run["seconds"] for run in results) for name, results in runs.items()
        },
        "cpu_seconds_median": {
            name: median(run["cpu_seconds"] for run in results) for name, results in runs.items()
        },
        "cpu_seconds_total_median": {
            name: median(total_cpu(run) for run in results) for name, results in runs.items()
        },
        "peak_rss_mb": {name: max(run["peak_rss_mb"] for run in results) for name, results in runs.items()},
        "ratios": {
            f"{name}_over_{other}": rates[name] / rates[other]
            for name in archivers
            for other in ("duckdb", "duckdb_text", "floor", *[a for a in archivers if a != name])
        },
        "ratios_per_round": {
            f"{name}_over_{other}": [
                b["wall_seconds"] / a["wall_seconds"] for a, b in zip(runs[name], runs[other], strict=True)
            ]
            for name in archivers
            for other in ("duckdb", "duckdb_text", "floor")
        },
        # The same ratio in CPU seconds (the process's and its pool's, user and system): what a
        # core does, steadier than wall seconds on a machine shared with other work.
        "cpu_ratios": {
            f"{name}_over_floor": median(total_cpu(run) for run in runs["floor"])
            / median(total_cpu(run) for run in runs[name])
            for name in archivers
        },
        "cpu_ratios_per_round": {
            f"{name}_over_floor": [
                total_cpu(b) / total_cpu(a) for a, b in zip(runs[name], runs["floor"], strict=True)
            ]
            for name in archivers
        },
        "archiver_report": runs["archiver"][-1]["report"],
        "archiver_requests": {
            "source": runs["archiver"][-1].get("source_requests"),
            "dest": runs["archiver"][-1].get("dest_requests"),
        },
        "archive": archive_sizes,
        "duckdb_output": duckdb_sizes,
        "warnings": warnings,
    }


def run_figures(result: dict[str, Any]) -> dict[str, Any]:
    report = result["report"]
    return {
        "seconds": result["wall_seconds"],
        "report_seconds": report["seconds"],
        "requests": report["requests"],
        "source_requests": result.get("source_requests"),
        "dest_requests": result.get("dest_requests"),
        "dest_bytes_read": (result.get("dest_bytes") or {}).get("read"),
        "objects_listed": report["objects_listed"],
        "objects_archived": report["objects_archived"],
        "objects_quarantined": report["objects_quarantined"],
        "objects_skipped": report["objects_skipped"],
        "bytes_written": report["bytes_written"],
        "files_written": report["files_written"],
        "units": report["units"],
        "units_committed": report["units_committed"],
        "units_sealed": report["units_sealed"],
        "rows": report["rows"],
        "window": report.get("window"),
        "peak_rss_mb": result["peak_rss_mb"],
        "tree_peak_rss_mb": result.get("tree_peak_rss_mb"),
        "tree_peak_pss_mb": result.get("tree_peak_pss_mb"),
        "cpu_seconds_total": total_cpu(result),
    }


def incremental_runs(
    run: Callable[[], dict[str, Any]], add_day: Callable[[], None], new_objects: int, label: str
) -> dict[str, Any]:
    """After a full run: a no-op rerun, then one new day of objects and a rerun."""
    figures: dict[str, Any] = {}
    for step in ("noop", "new_day"):
        if step == "new_day":
            add_day()
        result = run()
        figures[step] = run_figures(result)
        requests = result["report"]["requests"]
        log(f"{label} incremental {step}: {result['wall_seconds']:.2f}s requests={requests}")
    figures["new_objects"] = new_objects
    return figures


def moto_section(
    corpus: dict[str, Any], day: dict[str, Any], rounds: int, concurrency: int
) -> dict[str, Any]:
    from archiver.local.moto_server import create_bucket, running_moto_process, upload_tree

    root = Path(corpus["path"])
    runs: dict[str, list[dict[str, Any]]] = {"archiver": [], "bare": []}
    log(f"starting moto in its own process, preloaded with {corpus['objects']} objects")
    with running_moto_process(preload={"src": root}) as endpoint:
        env = aws_env(endpoint)
        for round_number in range(rounds):
            bucket = f"dst-{round_number}"
            create_bucket(endpoint, bucket)
            archived = run_child(["archiver", "s3://src/", f"s3://{bucket}/"], env=env)
            runs["archiver"].append(archived)
            log(f"moto round {round_number + 1}/{rounds} archiver: {archived['wall_seconds']:.2f}s")
            bare = run_child(["bare-get", endpoint, "src", str(concurrency)], env=env)
            runs["bare"].append(bare)
            log(f"moto round {round_number + 1}/{rounds} bare-get: {bare['wall_seconds']:.2f}s")
        warnings = check_rows("moto archiver", runs["archiver"][-1]["report"], corpus)

        last_bucket = f"dst-{rounds - 1}"
        incremental = {"full": run_figures(runs["archiver"][-1])}
        incremental |= incremental_runs(
            lambda: run_child(["archiver", "s3://src/", f"s3://{last_bucket}/"], env=env),
            lambda: log(
                f"uploaded {upload_tree(endpoint, 'src', Path(day['path']))} new-day objects to moto"
            ),
            day["json_files"],
            "moto",
        )
    objects = {
        name: [run["report"]["objects_listed"] if name == "archiver" else run["objects"] for run in results]
        for name, results in runs.items()
    }
    seconds = {name: median(run["wall_seconds"] for run in results) for name, results in runs.items()}
    rates = {name: objects[name][-1] / seconds[name] for name in runs}
    return {
        "objects": objects["archiver"][-1],
        "bare_objects": objects["bare"][-1],
        "concurrency": concurrency,
        "rounds": rounds,
        "seconds_median": seconds,
        "seconds_all": {
            name: [round(run["wall_seconds"], 3) for run in results] for name, results in runs.items()
        },
        "cpu_seconds_total_median": {
            name: median(total_cpu(run) for run in results) for name, results in runs.items()
        },
        "objects_per_second": rates,
        "ratio_archiver_over_bare": rates["archiver"] / rates["bare"],
        "ratio_per_round": [
            (a["report"]["objects_listed"] / a["wall_seconds"]) / (b["objects"] / b["wall_seconds"])
            for a, b in zip(runs["archiver"], runs["bare"], strict=True)
        ],
        "peak_rss_mb": {name: max(run["peak_rss_mb"] for run in results) for name, results in runs.items()},
        "archiver_requests": runs["archiver"][-1]["report"]["requests"],
        "archiver_source_requests": runs["archiver"][-1].get("source_requests"),
        "archiver_dest_requests": runs["archiver"][-1].get("dest_requests"),
        "bare_requests": runs["bare"][-1].get("requests"),
        "incremental": incremental,
        "warnings": warnings,
    }


def local_incremental_section(corpus: dict[str, Any], day: dict[str, Any]) -> dict[str, Any]:
    source = fresh(WORK / "incremental-source")
    dest = fresh(WORK / "incremental-archive")
    link_tree(Path(corpus["path"]), source)

    def run() -> dict[str, Any]:
        return run_child(["archiver", str(source), str(dest)])

    full = run()
    log(f"local incremental full: {full['wall_seconds']:.2f}s")

    def add_day() -> None:
        log(f"linked {link_tree(Path(day['path']), source)} new-day objects into the local source")

    figures = incremental_runs(run, add_day, day["json_files"], "local")
    figures["full"] = run_figures(full)
    shutil.rmtree(source, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    return figures


def memory_section(
    main_peak: float, corpora: dict[str, dict[str, Any]], repeats: dict[str, int]
) -> dict[str, Any]:
    """Archiver runs per extra corpus (local folder source); the worst peak RSS and the median seconds.

    The peak with big objects depends on how many of them happen to be in flight at
    once, so those corpora run more than once (`repeats`).
    """
    runs: dict[str, Any] = {}
    for name, corpus in corpora.items():
        results = []
        for _ in range(repeats.get(name, 1)):
            dest = fresh(WORK / f"memory-{name}")
            sampled = child_env({"BENCH_SAMPLE_TREE": "1"})
            result = run_child(["archiver", corpus["path"], str(dest)], env=sampled)
            check_rows(f"memory {name}", result["report"], corpus)
            sizes = parquet_bytes(dest)
            shutil.rmtree(dest, ignore_errors=True)
            log(f"memory {name}: peak {result['peak_rss_mb']:.0f} MB in {result['wall_seconds']:.1f}s")
            results.append(result)
        seconds = median(result["wall_seconds"] for result in results)
        runs[name] = {
            "corpus": corpus["name"],
            "jobs": corpus["params"]["jobs"],
            "big_objects": corpus["params"]["big_objects"],
            "objects": corpus["objects"],
            "bytes": corpus["bytes"],
            "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
            "peak_rss_mb_all": [round(result["peak_rss_mb"], 1) for result in results],
            "tree_peak_rss_mb": max(result.get("tree_peak_rss_mb") or 0 for result in results),
            "tree_peak_pss_mb": max(result.get("tree_peak_pss_mb") or 0 for result in results),
            "arrow_pool": [result.get("arrow_pool") for result in results],
            "seconds": seconds,
            "files_per_second": corpus["json_files"] / seconds,
            **sizes,
        }
    return {"main_peak_rss_mb": main_peak, "runs": runs}
