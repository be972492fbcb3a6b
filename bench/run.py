"""`make bench`: the archiver's figures next to their floors, measured side by side in one run.

Every measured task is its own process (bench/measure.py), so peak RSS is that task's
alone; the competitors run interleaved (A/B/C, A/B/C, ...) and the figures are
medians, so a noisy shared machine slows all of them alike and the ratios hold.
Prints one table per section and a targets table, and writes bench/out/results.json.
Corpora are cached under bench/out/ (a `<name>.stamp.json` beside each records what made it).

    python bench/run.py                 # everything (about 15 minutes on 2 cores, +5 the first time)
    python bench/run.py --million       # also a 1,000,000-job day in the scaling section (+30 min)
    python bench/run.py --only heldout  # one section: heldout, synth, moto, memory, scaling, incremental,
                                        # cost, publish, policy
    python bench/run.py --profile       # cProfile one archiver run on the held-out corpus; print hotspots
    python bench/run.py --memprofile corpus-big   # where the archiver's Python heap peaks
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from corpora import DAYS, SCALE_DAY, START, day_prefixes, ensure_corpus
from cost import BASELINE_REF, cost_section
from harness import (
    OUT,
    REPO,
    RESULTS,
    WORK,
    BenchError,
    child_env,
    exclusive_bench,
    fresh,
    git_head,
    log,
    run_child,
)
from scaling import scaling_section
from sections import local_incremental_section, local_section, memory_section, moto_section
from summary import render, table, targets

SECTIONS = ("heldout", "synth", "moto", "memory", "scaling", "incremental", "cost", "publish", "policy")

COST_SHAPE = {"recipes": 480, "workspaces": 8, "world_seed": 20}
"""The cost corpora's world: 8 workspaces x 60 recipes, busy in a skewed way (issue 15)."""
PUBLISH_BATCH = 1_000
"""Objects of the batch published on top of the held-out run: one full SQS batch (the template's maximum)."""


def profile(corpus: dict[str, Any], top: int, workers: int | None) -> None:
    """cProfile one archiver run (page cache warmed first); print the hotspots of the main process.

    The parse pool's workers are other processes, invisible to cProfile: with `workers=1`
    everything (parsing included) runs in the profiled process.
    """
    import pstats

    run_child(["floor", corpus["path"]])  # warm the page cache, as in the measured rounds
    suffix = f"-w{workers}" if workers else ""
    output = OUT / f"profile-{corpus['name']}{suffix}.prof"
    dest = fresh(WORK / "profile-archive")
    env = child_env({"ARCHIVER_PARSE_WORKERS": str(workers)} if workers else None)
    command = ["archiver", corpus["path"], str(dest)]
    result = run_child(command, python_args=["-m", "cProfile", "-o", str(output)], env=env)
    shutil.rmtree(dest, ignore_errors=True)
    print(
        f"archiver under cProfile over {corpus['name']} (ARCHIVER_PARSE_WORKERS={workers or 'default'}): "
        f"{result['wall_seconds']:.1f}s wall, {result['cpu_seconds']:.1f}s CPU in the profiled process, "
        f"{result.get('cpu_seconds_descendants') or 0:.1f}s in the parse pool; profile in {output}"
    )
    stats = pstats.Stats(str(output))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def memprofile(folder: Path) -> None:
    """Attribute the Python heap peak of one archiver run to the functions it happens in."""
    if not folder.is_dir():
        raise BenchError(f"no corpus at {folder} (run the bench once first)")
    dest = fresh(WORK / "memprofile-archive")
    result = run_child(
        ["archiver-memprofile", str(folder), str(dest)], env=child_env({"ARCHIVER_PARSE_WORKERS": "1"})
    )
    shutil.rmtree(dest, ignore_errors=True)
    arrow = result.get("arrow_pool", {}).get("max_mb", 0)
    print(
        f"{folder.name} (parsing in-process: ARCHIVER_PARSE_WORKERS=1): "
        f"peak RSS {result['peak_rss_mb']:.0f} MB "
        f"(under tracemalloc); RSS after imports {result['baseline_rss_mb']:.0f} MB; Python heap peak "
        f"{result['traced_peak_mb']:.1f} MB; Arrow pool peak {arrow:.1f} MB (the peaks need not coincide); "
        f"largest object {result['largest_object_bytes']:,} B"
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


def main(argv: list[str] | None = None) -> int:
    with exclusive_bench():
        return _main(argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs in the synth 30-day corpus (20000)")
    parser.add_argument("--heldout-objects", type=int, default=20_000, help="objects in the held-out corpus")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved local rounds per corpus (3)")
    parser.add_argument("--moto-jobs", type=int, default=4_000, help="jobs in the moto/incremental corpus")
    parser.add_argument("--moto-rounds", type=int, default=3)
    parser.add_argument("--small-jobs", type=int, default=2_000, help="the 10x-smaller memory corpus (2000)")
    parser.add_argument("--big-jobs", type=int, default=2_000, help="small jobs beside the 3 big objects")
    parser.add_argument("--big-repeats", type=int, default=3, help="runs over the big-object corpus (3)")
    parser.add_argument(
        "--scale-jobs",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[20_000, 200_000],
        help="jobs of the one-day scaling corpora, smallest first (20000,200000)",
    )
    parser.add_argument("--million", action="store_true", help="also a 1,000,000-job day (scaling section)")
    parser.add_argument(
        "--cost-objects", type=int, default=12_500, help="objects of the cost backfill (12500)"
    )
    parser.add_argument(
        "--cost-baseline",
        default=BASELINE_REF,
        help="commit whose code the cost section also measures, side by side ('' for none)",
    )
    parser.add_argument(
        "--policy-objects", type=int, default=20_000, help="objects of each corpus of the policy section"
    )
    parser.add_argument("--policy-rounds", type=int, default=5, help="interleaved policy rounds (5)")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--no-moto", action="store_true", help="skip everything that runs against moto")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="heldout",
        choices=("heldout", "synth"),
        help="only cProfile one archiver run over that corpus (heldout); print hotspots",
    )
    parser.add_argument("--profile-workers", type=int, help="ARCHIVER_PARSE_WORKERS for --profile")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--memprofile", metavar="CORPUS", help="only attribute one run's Python heap peak")
    return parser


def _label(jobs: int) -> str:
    return f"{jobs // 1_000_000}M" if jobs % 1_000_000 == 0 else f"{jobs // 1000}k"


def _cost(args: argparse.Namespace, corpus: Any) -> dict[str, Any]:
    """Issue 15's cost corpora (30 days, the day after, a busy day for SQS), then the cost section."""
    objects = args.cost_objects
    corpora = {
        "backfill": corpus("corpus-cost", jobs=objects, seed=21, kind="heldout", shape=COST_SHAPE),
        "nightly": corpus(
            "corpus-cost-newday",
            jobs=objects // DAYS,
            seed=22,
            start=START + dt.timedelta(days=DAYS),
            days=1,
            kind="heldout",
            shape=COST_SHAPE,
        ),
        "stream": corpus(
            "corpus-cost-stream",
            jobs=max(2_000, objects * 2 // 5),
            seed=23,
            start=START + dt.timedelta(days=DAYS + 1),
            days=1,
            kind="heldout",
            shape=COST_SHAPE,
        ),
    }
    log(f"cost: backfill, nightly and SQS paths on moto, baseline {args.cost_baseline or 'none'}")
    return cost_section(corpora, args.cost_baseline or None)


def _publish(args: argparse.Namespace, corpus: Any) -> dict[str, Any]:
    """Issue 14's publish cost: after a run over the held-out corpus, a no-op, after one SQS-sized batch."""
    from publish import publish_cost

    held = corpus("corpus-heldout", jobs=args.heldout_objects, seed=args.seed + 4, kind="heldout")
    batch = corpus(
        "corpus-publish-batch",
        jobs=PUBLISH_BATCH,
        seed=args.seed + 30,
        start=START + dt.timedelta(days=DAYS),
        days=1,
        kind="heldout",
    )
    log(f"publish: Iceberg tables over {held['objects']:,} objects on moto, then {batch['objects']:,} more")
    return publish_cost(Path(held["path"]), Path(batch["path"]))


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    wanted = set(args.only or SECTIONS) - ({"moto"} if args.no_moto else set())
    if args.profile:
        corpus = (
            ensure_corpus("corpus-heldout", jobs=args.heldout_objects, seed=args.seed + 4, kind="heldout")
            if args.profile == "heldout"
            else ensure_corpus("corpus", jobs=args.jobs, seed=args.seed)
        )
        profile(corpus, args.profile_top, args.profile_workers)
        return 0
    if args.memprofile:
        memprofile(OUT / args.memprofile)
        return 0

    from archiver.config import settings_from_env

    settings = settings_from_env()
    corpora: dict[str, dict[str, Any]] = {}

    def corpus(name: str, **params: Any) -> dict[str, Any]:
        corpora[name] = ensure_corpus(name, **params)
        return corpora[name]

    results: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "parse_workers_default": settings.parse_workers or os.cpu_count(),
            "unit_max_objects": settings.unit_max_objects,
            "loadavg_start": os.getloadavg(),
            "git_head": git_head(),
            "command": " ".join([sys.executable, *sys.argv]),
            "sections": sorted(wanted),
        },
        "corpora": corpora,
        "local": {},
    }
    try:
        if "heldout" in wanted:
            held = corpus("corpus-heldout", jobs=args.heldout_objects, seed=args.seed + 4, kind="heldout")
            log(
                f"local folder, held-out corpus: {args.rounds} interleaved rounds "
                f"over {held['json_files']:,} files"
            )
            results["local"]["heldout"] = local_section(
                held, args.rounds, variants={"archiver_w1": {"ARCHIVER_PARSE_WORKERS": "1"}}
            )
        if wanted & {"synth", "memory"}:
            main_corpus = corpus("corpus", jobs=args.jobs, seed=args.seed)
            log(
                f"local folder, synth corpus: {args.rounds} interleaved rounds "
                f"over {main_corpus['json_files']:,} files"
            )
            results["local"]["synth"] = local_section(main_corpus, args.rounds)
        if "memory" in wanted:
            log("memory: 30-day corpora")
            extra = {
                "small": corpus("corpus-small", jobs=args.small_jobs, seed=args.seed),
                "big": corpus("corpus-big", jobs=args.big_jobs, seed=args.seed + 3, big_objects=3),
            }
            memory = memory_section(
                results["local"]["synth"]["peak_rss_mb"]["archiver"], extra, {"big": args.big_repeats}
            )
            memory["growth"] = {
                f"{args.small_jobs:,} -> {args.jobs:,} jobs": memory["main_peak_rss_mb"]
                / memory["runs"]["small"]["peak_rss_mb"]
                - 1
            }
            results["memory"] = memory
        if wanted & {"moto", "incremental"}:
            moto_corpus = corpus("corpus-moto", jobs=args.moto_jobs, seed=args.seed + 1)
            newday = corpus(
                "corpus-newday",
                jobs=max(1, args.moto_jobs // DAYS),
                seed=args.seed + 2,
                start=START + dt.timedelta(days=DAYS),
                days=1,
            )
            incremental: dict[str, Any] = {}
            if "incremental" in wanted:
                log("incremental: local folder")
                incremental["local"] = local_incremental_section(moto_corpus, newday)
            if "moto" in wanted:
                log(f"moto: {args.moto_rounds} interleaved rounds over {moto_corpus['objects']:,} objects")
                results["moto"] = moto_section(moto_corpus, newday, args.moto_rounds, settings.concurrency)
                if "incremental" in wanted:
                    incremental["moto"] = results["moto"]["incremental"]
            prefixes = day_prefixes(Path(newday["path"]))
            for figures in incremental.values():
                figures["base_objects"] = moto_corpus["objects"]
                figures["new_day_prefixes"] = prefixes
            results["incremental"] = incremental
        if "cost" in wanted:
            results["cost"] = _cost(args, corpus)
        if "publish" in wanted:
            results["publish"] = _publish(args, corpus)
        if "policy" in wanted:
            from policy import measure_policy_cost

            log(f"policy: parse files/s with no, the default and a heavy policy, {args.policy_rounds} rounds")
            results["policy"] = measure_policy_cost(args.policy_objects, args.policy_rounds)
        if "scaling" in wanted:  # last: gigabytes of files push the other corpora out of the page cache
            sizes = sorted(set(args.scale_jobs + ([1_000_000] if args.million else [])))
            days = {
                _label(jobs): corpus(
                    f"corpus-day-{_label(jobs)}",
                    jobs=jobs,
                    seed=args.seed + 10 + index,
                    start=SCALE_DAY,
                    days=1,
                )
                for index, jobs in enumerate(sizes)
            }
            log(f"scaling: one-day corpora {', '.join(days)}")
            results["scaling"] = scaling_section(days)
    finally:
        results["meta"]["loadavg_end"] = os.getloadavg()
        results["meta"]["seconds"] = round(time.perf_counter() - began, 1)
        RESULTS.write_text(json.dumps(results, indent=2, default=str))  # what was measured, first
        try:
            results["targets"] = targets(results)
        except Exception as error:  # a partial run or a summary bug: keep what was measured
            results["targets"] = []
            print(f"(no targets table: {error!r})", file=sys.stderr)
        RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(render(results))
    meta = results["meta"]
    print(
        f"\nwhole bench: {meta['seconds']:.0f}s; load average {meta['loadavg_start'][0]:.2f}"
        f" -> {meta['loadavg_end'][0]:.2f}; {meta['cpus']} CPUs,"
        f" parse workers {meta['parse_workers_default']};"
        f" results in {RESULTS.relative_to(REPO)}"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"\nbench FAILED: {error}", file=sys.stderr)
        sys.exit(1)
