"""`make bench`: the archiver's figures next to their floors, measured side by side in one run.

Every measured task is its own process (bench/measure.py), so peak RSS is that task's
alone; the competitors run interleaved (A/B/C, A/B/C, ...) and the figures are
medians, so a noisy shared machine slows all of them alike and the ratios hold.
Prints a table and writes bench/out/results.json. Corpora are cached under bench/out/
(one `<name>.stamp.json` beside each records what it was made from).

    python bench/run.py                 # everything (about 4-5 minutes on 2 cores, +1 the first time)
    python bench/run.py --huge          # also the 200k-job memory-growth corpus (+2 min, +3 to write it once)
    python bench/run.py --profile       # cProfile one archiver run on the main corpus; print hotspots
    python bench/run.py --memprofile corpus-big   # where the archiver's Python heap peaks
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SRC = REPO / "src"
OUT = BENCH / "out"
WORK = OUT / "work"
MEASURE = BENCH / "measure.py"
RESULTS = OUT / "results.json"

sys.path.insert(0, str(SRC))

import orjson  # noqa: E402

from archiver.local.synth import write_corpus  # noqa: E402

START = dt.date(2024, 8, 20)
DAYS = 30
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class BenchError(RuntimeError):
    """A measured child failed or produced something unusable."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- children


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["ARCHIVER_NO_PROGRESS"] = "1"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_child(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    python_args: Iterable[str] = (),
    timeout: float = 3600,
) -> dict[str, Any]:
    """Run one measure.py task; its JSON result plus `wall_seconds`. Any failure is loud and fatal."""
    command = [sys.executable, *python_args, str(MEASURE), *args]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=env or child_env(), timeout=timeout, cwd=REPO
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{' '.join(command)} timed out after {timeout:g}s:\n{error.stderr or ''}") from None
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        sys.stderr.write(f"\n=== child failed (exit {done.returncode}): {' '.join(command)}\n")
        sys.stderr.write(f"--- stdout:\n{done.stdout}\n--- stderr:\n{done.stderr}\n")
        raise BenchError(f"measure.py {args[0]} failed with exit code {done.returncode}")
    try:
        result: dict[str, Any] = orjson.loads(lines[-1])
    except orjson.JSONDecodeError:
        sys.stderr.write(f"\n=== child printed no JSON: {' '.join(command)}\n{done.stdout}\n{done.stderr}\n")
        raise BenchError(f"measure.py {args[0]} printed no JSON result") from None
    if done.stderr.strip():
        sys.stderr.write(f"--- stderr of measure.py {args[0]} (exit 0):\n{done.stderr[-4000:]}\n")
    result["wall_seconds"] = wall
    report = result.get("report")
    if report is not None and (report.get("objects_failed") or report.get("failures")):
        raise BenchError(f"archiver run {args[1:]} left unreadable objects: {report.get('failures')[:3]}")
    return result


# --------------------------------------------------------------------------- corpora


def _synth_fingerprint() -> str:
    """Corpora are rebuilt when the generator changes."""
    import archiver.local.synth as synth

    digest = hashlib.sha256()
    for module in sorted(Path(synth.__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()[:16]


def ensure_corpus(
    name: str, *, jobs: int, seed: int, start: dt.date = START, days: int = DAYS, big_objects: int = 0
) -> dict[str, Any]:
    """bench/out/<name>, written by write_corpus unless a matching stamp says it already is."""
    folder = OUT / name
    stamp = OUT / f"{name}.stamp.json"
    params = {
        "jobs": jobs,
        "seed": seed,
        "start": start.isoformat(),
        "days": days,
        "big_objects": big_objects,
        "synth": _synth_fingerprint(),
    }
    if stamp.exists() and folder.is_dir():
        recorded = json.loads(stamp.read_text())
        if recorded.get("params") == params:
            return {**recorded, "path": str(folder), "reused": True}
    log(f"writing corpus {name}: jobs={jobs} seed={seed} start={start} days={days} big_objects={big_objects}")
    stamp.unlink(missing_ok=True)
    temporary = OUT / f"{name}.partial"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(temporary, ignore_errors=True)
    started = time.perf_counter()
    summary = write_corpus(temporary, jobs=jobs, seed=seed, start=start, days=days, big_objects=big_objects)
    temporary.rename(folder)
    json_files = sum(n.endswith(".json") for _, _, names in os.walk(folder) for n in names)
    recorded = {
        "params": params,
        "objects": summary.objects,
        "json_files": json_files,
        "bytes": summary.total_bytes,
        "expected": {
            "jobs": summary.jobs,
            "job_lines": summary.job_lines,
            "activity": summary.activity_events,
            "quarantined": summary.quarantined,
        },
        "write_seconds": round(time.perf_counter() - started, 1),
    }
    stamp.write_text(json.dumps(recorded, indent=2))
    return {**recorded, "path": str(folder), "reused": False}


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def parquet_bytes(root: Path) -> dict[str, int]:
    """Bytes of the archive's parquet files (outside _archiver/) and of its own bookkeeping."""
    data = bookkeeping = files = 0
    for folder, _, names in os.walk(root):
        relative = Path(folder).relative_to(root).parts
        for name in names:
            size = os.path.getsize(os.path.join(folder, name))
            if relative and relative[0] == "_archiver":
                bookkeeping += size
            elif name.endswith(".parquet"):
                data += size
                files += 1
    return {"parquet_bytes": data, "parquet_files": files, "archiver_bytes": bookkeeping}


def parseable_files(root: Path, listing: Path) -> int:
    """Write the paths of the files that parse as JSON (what read_json_objects can take) to `listing`."""
    good: list[str] = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".json"):
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    try:
                        orjson.loads(handle.read())
                    except orjson.JSONDecodeError:
                        continue
                good.append(path)
    good.sort()
    listing.write_text("\n".join(good) + "\n", encoding="utf-8")
    return len(good)


def link_tree(source: Path, dest: Path) -> int:
    """Hard-link every file of `source` into `dest` (same relative paths, replacing existing ones)."""
    linked = 0
    for folder, _, names in os.walk(source):
        target = dest / Path(folder).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            (target / name).unlink(missing_ok=True)
            os.link(Path(folder, name), target / name)
            linked += 1
    return linked


def day_prefixes(root: Path) -> int:
    """How many distinct `.../YYYYMMDD/` folders (e.g. USER/jobs/RECIPE/DAY/) hold files under root."""
    prefixes: set[str] = set()
    for folder, _, names in os.walk(root):
        if not names:
            continue
        parts = Path(folder).relative_to(root).parts
        for index, part in enumerate(parts):
            if len(part) == 8 and part.isdigit():
                prefixes.add("/".join(parts[: index + 1]))
                break
    return len(prefixes)


# --------------------------------------------------------------------------- sections


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


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


def local_section(corpus: dict[str, Any], rounds: int) -> dict[str, Any]:
    root = Path(corpus["path"])
    listing = OUT / "duckdb-files.txt"
    parseable = parseable_files(root, listing)
    tasks: dict[str, Callable[[int], list[str]]] = {
        "archiver": lambda r: ["archiver", str(root), str(fresh(WORK / f"local-archive-{r}"))],
        "duckdb": lambda r: ["duckdb", str(root), str(fresh(WORK / f"duckdb-{r}")), str(listing)],
        "duckdb_text": lambda r: ["duckdb-text", str(root), str(fresh(WORK / f"duckdb-text-{r}"))],
        "floor": lambda r: ["floor", str(root)],
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in tasks}
    for round_number in range(rounds):
        for name, make_args in tasks.items():
            result = run_child(make_args(round_number))
            runs[name].append(result)
            log(f"local round {round_number + 1}/{rounds} {name}: {result['wall_seconds']:.2f}s")
        if round_number < rounds - 1:
            for name in ("local-archive", "duckdb", "duckdb-text"):
                shutil.rmtree(WORK / f"{name}-{round_number}", ignore_errors=True)
    last = rounds - 1
    archive_sizes = parquet_bytes(WORK / f"local-archive-{last}")
    duckdb_sizes = parquet_bytes(WORK / f"duckdb-{last}")
    warnings = check_rows("local archiver", runs["archiver"][-1]["report"], corpus)
    for name in ("local-archive", "duckdb", "duckdb-text"):
        shutil.rmtree(WORK / f"{name}-{last}", ignore_errors=True)

    files = corpus["json_files"]
    seconds = {name: median(run["wall_seconds"] for run in results) for name, results in runs.items()}
    rates = {name: files / value for name, value in seconds.items()}
    return {
        "files": files,
        "duckdb_files": parseable,
        "rounds": rounds,
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
        "peak_rss_mb": {name: max(run["peak_rss_mb"] for run in results) for name, results in runs.items()},
        "ratios": {
            "archiver_over_duckdb": rates["archiver"] / rates["duckdb"],
            "archiver_over_duckdb_text": rates["archiver"] / rates["duckdb_text"],
            "archiver_over_floor": rates["archiver"] / rates["floor"],
        },
        "ratios_per_round": {
            f"archiver_over_{other}": [
                b["wall_seconds"] / a["wall_seconds"]
                for a, b in zip(runs["archiver"], runs[other], strict=True)
            ]
            for other in ("duckdb", "duckdb_text", "floor")
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


def aws_env(endpoint: str) -> dict[str, str]:
    return child_env({"AWS_ENDPOINT_URL": endpoint, **DUMMY_AWS})


def run_figures(result: dict[str, Any]) -> dict[str, Any]:
    report = result["report"]
    return {
        "seconds": result["wall_seconds"],
        "report_seconds": report["seconds"],
        "requests": report["requests"],
        "source_requests": result.get("source_requests"),
        "dest_requests": result.get("dest_requests"),
        "objects_listed": report["objects_listed"],
        "objects_archived": report["objects_archived"],
        "objects_quarantined": report["objects_quarantined"],
        "objects_skipped": report["objects_skipped"],
        "window": report.get("window"),
        "peak_rss_mb": result["peak_rss_mb"],
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
            result = run_child(["archiver", corpus["path"], str(dest)])
            check_rows(f"memory {name}", result["report"], corpus)
            sizes = parquet_bytes(dest)
            shutil.rmtree(dest, ignore_errors=True)
            log(f"memory {name}: peak {result['peak_rss_mb']:.0f} MB in {result['wall_seconds']:.1f}s")
            results.append(result)
        seconds = median(result["wall_seconds"] for result in results)
        runs[name] = {
            "corpus": f"corpus-{name}",
            "jobs": corpus["params"]["jobs"],
            "big_objects": corpus["params"]["big_objects"],
            "objects": corpus["objects"],
            "bytes": corpus["bytes"],
            "peak_rss_mb": max(result["peak_rss_mb"] for result in results),
            "peak_rss_mb_all": [round(result["peak_rss_mb"], 1) for result in results],
            "arrow_pool": [result.get("arrow_pool") for result in results],
            "seconds": seconds,
            "files_per_second": corpus["json_files"] / seconds,
            **sizes,
        }
    return {"main_peak_rss_mb": main_peak, "runs": runs}


# --------------------------------------------------------------------------- output


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    all_rows = ([header] if header else []) + rows
    widths = [max(len(row[i]) for row in all_rows if i < len(row)) for i in range(max(map(len, all_rows)))]
    lines = [f"\n{title}", "-" * len(title)]
    for index, row in enumerate(all_rows):
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if header and index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"


def target_row(
    name: str, value: float, target: float, kind: str, shown: str, target_shown: str | None = None
) -> dict[str, Any]:
    """kind: ">=" (at least), "<=" (at most) or "==" (exactly)."""
    met = {">=": value >= target, "<=": value <= target, "==": abs(value - target) < 1e-9}[kind]
    if met:
        margin = "met"
    elif kind == ">=":
        margin = f"MISSED: {value / target:.2f} of target ({target / value:.1f}x short)"
    elif kind == "<=":
        margin = f"MISSED: {value / target:.2f}x the limit"
    else:
        margin = f"MISSED: {value:g} vs {target:g}"
    return {
        "name": name,
        "value": value,
        "target": target,
        "kind": kind,
        "met": met,
        "shown": shown,
        "target_shown": target_shown or f"{kind} {target:g}",
        "margin": margin,
    }


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    corpus = results["corpus"]
    out.append(
        table(
            "Corpora (synth.write_corpus)",
            [
                (
                    name,
                    f"{c['params']['jobs']:,}",
                    f"{c['params']['days']}",
                    f"{c['params']['big_objects']}",
                    f"{c['objects']:,}",
                    f"{c['json_files']:,}",
                    mb(c["bytes"]),
                    "reused" if c["reused"] else "written",
                )
                for name, c in results["corpora"].items()
            ],
            ("corpus", "jobs", "days", "big", "objects", ".json", "bytes", ""),
        )
    )
    local = results.get("local")
    if local:
        rows = []
        labels = {
            "archiver": "(a) archiver compact",
            "duckdb": "(b) DuckDB read_json_objects+COPY",
            "duckdb_text": "(b') DuckDB read_text+COPY",
            "floor": "(c) floor: read + orjson.loads",
        }
        for name, label in labels.items():
            rows.append(
                (
                    label,
                    f"{local['seconds_median'][name]:.2f}",
                    " ".join(f"{s:.2f}" for s in local["seconds_all"][name]),
                    f"{local['cpu_seconds_median'][name]:.2f}",
                    f"{local['files_per_second'][name]:,.0f}",
                    f"{local['peak_rss_mb'][name]:.0f}",
                )
            )
        out.append(
            table(
                f"Local folder, {local['files']:,} .json files ({mb(corpus['bytes'])}), "
                f"{local['rounds']} interleaved rounds, medians",
                rows,
                ("task", "wall s", "all rounds", "cpu s", "files/s", "peak MB"),
            )
        )
        ratios = local["ratios"]
        out.append(
            table(
                "Local ratios (files/s over files/s): of the medians, and per round",
                [
                    (
                        label,
                        f"{ratios[key]:.2f}",
                        " ".join(f"{r:.2f}" for r in local["ratios_per_round"][key]),
                    )
                    for label, key in (
                        ("archiver / DuckDB read_json_objects", "archiver_over_duckdb"),
                        ("archiver / DuckDB read_text", "archiver_over_duckdb_text"),
                        ("archiver / parse floor", "archiver_over_floor"),
                    )
                ],
            )
        )
    moto = results.get("moto")
    if moto:
        rows = [
            (
                label,
                f"{moto['seconds_median'][name]:.2f}",
                " ".join(f"{s:.2f}" for s in moto["seconds_all"][name]),
                f"{moto['objects_per_second'][name]:,.0f}",
                json.dumps(moto["archiver_requests"] if name == "archiver" else moto["bare_requests"]),
            )
            for name, label in (("archiver", "archiver compact s3->s3"), ("bare", "bare aioboto3 list+GET"))
        ]
        per_round = " ".join(f"{ratio:.2f}" for ratio in moto["ratio_per_round"])
        rows.append(("ratio archiver / bare", "", per_round, f"{moto['ratio_archiver_over_bare']:.2f}", ""))
        out.append(
            table(
                f"moto (own process), {moto['objects']:,} objects, concurrency {moto['concurrency']}, "
                f"{moto['rounds']} interleaved rounds, medians",
                rows,
                ("task", "wall s", "all rounds", "objects/s", "requests"),
            )
        )
    memory = results.get("memory")
    if memory:
        rows = [
            (
                "main corpus (local rounds)",
                f"{results['corpus']['params']['jobs']:,}",
                "0",
                f"{memory['main_peak_rss_mb']:.0f}",
                "",
                "",
            )
        ]
        for figure in memory["runs"].values():
            if isinstance(figure, dict):
                rows.append(
                    (
                        figure["corpus"],
                        f"{figure['jobs']:,}",
                        str(figure["big_objects"]),
                        " / ".join(f"{peak:.0f}" for peak in figure["peak_rss_mb_all"]),
                        f"{figure['seconds']:.1f}",
                        f"{figure['files_per_second']:,.0f}",
                    )
                )
        for label, value in memory.get("growth", {}).items():
            rows.append((f"growth {label}", "", "", f"{value * 100:+.1f}%", "", ""))
        out.append(
            table(
                "Archiver peak RSS (VmHWM, MB)",
                rows,
                ("corpus", "jobs", "big", "peak MB", "s", "files/s"),
            )
        )
    if local:
        archive = local["archive"]
        out.append(
            table(
                "Archive size (main corpus)",
                [
                    ("source bytes", mb(corpus["bytes"])),
                    ("archive parquet bytes (excl. _archiver/)", mb(archive["parquet_bytes"])),
                    ("archive parquet files", str(archive["parquet_files"])),
                    ("_archiver/ bookkeeping bytes", mb(archive["archiver_bytes"])),
                    ("archive / source", f"1/{corpus['bytes'] / max(archive['parquet_bytes'], 1):.1f}"),
                    ("DuckDB output (read_json_objects) bytes", mb(local["duckdb_output"]["parquet_bytes"])),
                ],
            )
        )
    for label, figures in results.get("incremental", {}).items():
        rows = []
        for step in ("full", "noop", "new_day"):
            figure = figures.get(step)
            if not figure:
                continue
            source = figure.get("source_requests") or {}
            dest = figure.get("dest_requests") or {}
            rows.append(
                (
                    step,
                    f"{figure['seconds']:.2f}",
                    str(source.get("list", "")),
                    str(source.get("get", "")),
                    str(dest.get("list", "")),
                    str(dest.get("get", "")),
                    str(dest.get("put", "")),
                    str(figure.get("objects_archived", "")),
                    json.dumps(figure["requests"]),
                )
            )
        out.append(
            table(
                f"Incremental, {label} source ({figures['base_objects']:,} objects over 30 days; new day: "
                f"{figures['new_objects']} .json objects in {figures['new_day_prefixes']} day folders)",
                rows,
                (
                    "run",
                    "wall s",
                    "src LIST",
                    "src GET",
                    "dst LIST",
                    "dst GET",
                    "dst PUT",
                    "archived",
                    "total requests",
                ),
            )
        )
    out.append(
        table(
            "Targets",
            [(t["name"], t["shown"], t["target_shown"], t["margin"]) for t in results["targets"]],
            ("figure", "value", "target", "status"),
        )
    )
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    local = results.get("local")
    if local:
        ratios = local["ratios"]
        duckdb, floor = ratios["archiver_over_duckdb"], ratios["archiver_over_floor"]
        rows.append(target_row("archiver / DuckDB files/s", duckdb, 10, ">=", f"{duckdb:.2f}x", ">= 10x"))
        rows.append(target_row("archiver / parse floor files/s", floor, 0.33, ">=", f"{floor:.2f}"))
        share = local["archive"]["parquet_bytes"] / results["corpus"]["bytes"]
        rows.append(
            target_row("archive bytes / source bytes", share, 0.1, "<=", f"1/{1 / share:.1f}", "<= 1/10")
        )
    moto = results.get("moto")
    if moto:
        ratio = moto["ratio_archiver_over_bare"]
        rows.append(target_row("moto: archiver / bare GET objects/s", ratio, 0.9, ">=", f"{ratio:.2f}"))
    memory = results.get("memory")
    if memory:
        for label, peak in [("main corpus", memory["main_peak_rss_mb"])] + [
            (run["corpus"], run["peak_rss_mb"]) for run in memory["runs"].values()
        ]:
            rows.append(target_row(f"peak RSS {label} (MB)", peak, 512, "<=", f"{peak:.0f}"))
        for label, growth in memory.get("growth", {}).items():
            rows.append(
                target_row(f"RSS growth {label}", growth, 0.20, "<=", f"{growth * 100:+.1f}%", "<= +20%")
            )
    for label, figures in results.get("incremental", {}).items():
        gets = (figures["new_day"].get("source_requests") or {}).get("get")
        if gets is None:
            rows.append(
                {
                    "name": f"{label} new day: source GETs vs new objects",
                    "value": None,
                    "target": 1,
                    "met": False,
                    "shown": "?",
                    "target_shown": "equal",
                    "margin": "NOT MEASURED: no source/dest request split",
                }
            )
        else:
            new = figures["new_objects"]
            rows.append(
                target_row(
                    f"{label} new day: source GETs vs new objects",
                    gets / new,
                    1,
                    "==",
                    f"{gets} / {new}",
                    "equal",
                )
            )
    return rows


# --------------------------------------------------------------------------- main


def profile(corpus: dict[str, Any], top: int) -> None:
    """cProfile one archiver run over the main corpus (page cache warmed first); print the hotspots."""
    import pstats

    run_child(["floor", corpus["path"]])  # warm the page cache, as in the measured rounds
    output = OUT / "profile-archiver.prof"
    dest = fresh(WORK / "profile-archive")
    command = ["archiver", corpus["path"], str(dest)]
    result = run_child(command, python_args=["-m", "cProfile", "-o", str(output)])
    shutil.rmtree(dest, ignore_errors=True)
    print(f"archiver under cProfile: {result['wall_seconds']:.1f}s wall, profile in {output}")
    stats = pstats.Stats(str(output))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def memprofile(folder: Path) -> None:
    """Attribute the Python heap peak of one archiver run to the functions it happens in."""
    if not folder.is_dir():
        raise BenchError(f"no corpus at {folder} (run the bench once first)")
    dest = fresh(WORK / "memprofile-archive")
    result = run_child(["archiver-memprofile", str(folder), str(dest)])
    shutil.rmtree(dest, ignore_errors=True)
    arrow = result.get("arrow_pool", {}).get("max_mb", 0)
    print(
        f"{folder.name}: peak RSS {result['peak_rss_mb']:.0f} MB (under tracemalloc); RSS after imports "
        f"{result['baseline_rss_mb']:.0f} MB; Python heap peak {result['traced_peak_mb']:.1f} MB; Arrow pool "
        f"peak {arrow:.1f} MB (the peaks need not coincide); largest {result['largest_object_bytes']:,} B"
    )
    rows = [
        (name, str(row["calls"]), f"{row['heap_peak_mb']:.1f}", f"{row['max_rise_mb']:.1f}")
        for name, row in result["functions"].items()
    ]
    print(
        table(
            "Python heap (tracemalloc) by function",
            rows,
            ("function", "calls", "peak MB", "rise in one call"),
        )
    )


@contextlib.contextmanager
def exclusive_bench() -> Iterator[None]:
    """One bench at a time on this machine: they share bench/out and would time each other."""
    import fcntl

    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / ".lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            log(f"another bench run holds {OUT / '.lock'} ({lock.read().strip() or '?'}); waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        yield


def main(argv: list[str] | None = None) -> int:
    with exclusive_bench():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs in the main corpus (20000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved local rounds (3)")
    parser.add_argument(
        "--moto-jobs", type=int, default=4_000, help="jobs in the moto/incremental corpus (4000)"
    )
    parser.add_argument("--moto-rounds", type=int, default=3)
    parser.add_argument("--small-jobs", type=int, default=2_000, help="the 10x-smaller memory corpus (2000)")
    parser.add_argument(
        "--big-jobs", type=int, default=2_000, help="small jobs beside the 3 big objects (2000)"
    )
    parser.add_argument("--big-repeats", type=int, default=3, help="runs over the big-object corpus (3)")
    parser.add_argument(
        "--huge", action="store_true", help="also the 10x-larger memory corpus (+2 min, +3 once)"
    )
    parser.add_argument("--huge-jobs", type=int, default=200_000, help="jobs in that corpus (200000)")
    parser.add_argument("--no-moto", action="store_true", help="skip everything that runs against moto")
    parser.add_argument(
        "--profile", action="store_true", help="only cProfile one archiver run; print hotspots"
    )
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument(
        "--memprofile",
        metavar="CORPUS",
        help="only attribute one archiver run's Python heap peak (tracemalloc)",
    )
    args = parser.parse_args(argv)

    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    main_corpus = ensure_corpus("corpus", jobs=args.jobs, seed=args.seed)
    if args.profile:
        profile(main_corpus, args.profile_top)
        return 0
    if args.memprofile:
        memprofile(OUT / args.memprofile)
        return 0

    from archiver.config import settings_from_env

    concurrency = settings_from_env().concurrency
    corpora = {"corpus": main_corpus}
    moto_corpus = corpora["corpus-moto"] = ensure_corpus(
        "corpus-moto", jobs=args.moto_jobs, seed=args.seed + 1
    )
    newday = corpora["corpus-newday"] = ensure_corpus(
        "corpus-newday",
        jobs=max(1, args.moto_jobs // DAYS),
        seed=args.seed + 2,
        start=START + dt.timedelta(days=DAYS),
        days=1,
    )
    memory_corpora = {
        "small": ensure_corpus("corpus-small", jobs=args.small_jobs, seed=args.seed),
        "big": ensure_corpus("corpus-big", jobs=args.big_jobs, seed=args.seed + 3, big_objects=3),
    }
    if args.huge:
        huge = ensure_corpus("corpus-huge", jobs=args.huge_jobs, seed=args.seed)
    corpora.update({f"corpus-{name}": corpus for name, corpus in memory_corpora.items()})
    if args.huge:
        corpora["corpus-huge"] = huge

    results: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "git_head": _git_head(),
            "command": " ".join([sys.executable, *sys.argv]),
        },
        "corpus": main_corpus,
        "corpora": corpora,
    }
    try:
        log(f"local folder: {args.rounds} interleaved rounds over {main_corpus['json_files']:,} files")
        results["local"] = local_section(main_corpus, args.rounds)
        log("memory: extra corpora")
        memory = memory_section(
            results["local"]["peak_rss_mb"]["archiver"], memory_corpora, {"big": args.big_repeats}
        )
        main_peak = memory["main_peak_rss_mb"]
        memory["growth"] = {
            f"{args.small_jobs:,} -> {args.jobs:,} jobs": main_peak / memory["runs"]["small"]["peak_rss_mb"]
            - 1
        }
        results["memory"] = memory
        log("incremental: local folder")
        incremental = {"local": local_incremental_section(moto_corpus, newday)}
        results["incremental"] = incremental
        if not args.no_moto:
            log(f"moto: {args.moto_rounds} interleaved rounds over {moto_corpus['objects']:,} objects")
            results["moto"] = moto_section(moto_corpus, newday, args.moto_rounds, concurrency)
            incremental["moto"] = results["moto"]["incremental"]
        prefixes = day_prefixes(Path(newday["path"]))
        for figures in incremental.values():
            figures["base_objects"] = moto_corpus["objects"]
            figures["new_day_prefixes"] = prefixes
        if args.huge:  # last: 2 GB of files push the other corpora out of the page cache
            log(f"memory: {args.huge_jobs:,} jobs")
            memory["runs"] |= memory_section(main_peak, {"huge": huge}, {})["runs"]
            memory["growth"][f"{args.jobs:,} -> {args.huge_jobs:,} jobs"] = (
                memory["runs"]["huge"]["peak_rss_mb"] / main_peak - 1
            )
    finally:
        results["meta"]["loadavg_end"] = os.getloadavg()
        results["meta"]["seconds"] = round(time.perf_counter() - began, 1)
        try:
            results["targets"] = targets(results)
        except (KeyError, ZeroDivisionError) as error:  # a partial run: keep what was measured
            results["targets"] = []
            print(f"(no targets table: {error!r})", file=sys.stderr)
        RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    meta = results["meta"]
    print(
        f"\nwhole bench: {meta['seconds']:.0f}s; load average {meta['loadavg_start'][0]:.2f}"
        f" -> {meta['loadavg_end'][0]:.2f}; results in {RESULTS.relative_to(REPO)}"
    )
    return 0


def _git_head() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"\nbench FAILED: {error}", file=sys.stderr)
        sys.exit(1)
