"""The cost section: what each path pays S3 per million objects, against the one-GET floor.

Every figure comes from the run reports' `by_store` counts (exact: moto counts nothing,
the archiver counts every request it makes), priced at S3 Standard's public request
prices; the archiver runs against a moto server in its own process, one process
(`ARCHIVER_PARSE_WORKERS=1`, as a one-vCPU Lambda), on held-out corpora shaped like real
workspaces (8 workspaces x 60 recipes, skewed recipe activity: a few objects per
recipe-day folder). Paths:

- backfill: `compact` of 30 days into an empty archive; then a no-op rerun (LISTs only);
- nightly: one new day added to the source, `compact` with the lookback;
- SQS: a busy day's objects announced in shuffled batches of 100 and of 1,000 (EventBridge
  "Object Created" events, each batch one warm invocation of the handler's code).

Each path runs twice in one bench: with this checkout's code and with the baseline's
(`--cost-baseline REF`, default the commit issue 15 started from), the same measure.py
and corpora, so the goals are judged side by side.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from harness import OUT, REPO, SRC, BenchError, aws_env, log, run_child

BASELINE_REF = "8cad0b18b27ae46a500cf2758a453d02c58834d5"
"""main when issue 15 ("Cost follows the floor") was taken up: today's figures come from it."""

PRICE_PER_REQUEST = {"get": 0.40e-6, "head": 0.40e-6, "list": 5e-6, "put": 5e-6, "delete": 0.0}
"""S3 Standard, us-east-1, public prices: GET/HEAD $0.40 and PUT/COPY/POST/LIST $5 per million."""
FLOOR_PER_MILLION = 0.40
"""Every object must be read once: one GET each."""
SQS_PRICE_PER_REQUEST = 0.40e-6
SQS_REQUESTS_PER_OBJECT = 1 + 2 / 10
"""EventBridge sends one message per object; Lambda's pollers receive and delete in tens."""
LAMBDA_MEMORY_GB = 1769 / 1024
"""The template's default MemorySize (one vCPU)."""
LAMBDA_PRICE_PER_GB_S = 0.0000133334
"""arm64, us-east-1, first tier."""
GOALS = {"backfill": 1.25, "nightly": 1.5, "sqs-100": 1.5, "sqs-1000": 1.5}
"""Issue 15's goals: S3 dollars per million objects at most this many times the floor."""
WORKERS = {"ARCHIVER_PARSE_WORKERS": "1", "ARCHIVER_CONCURRENCY": "32"}


def baseline_source(ref: str) -> Path | None:
    """The baseline's `src/` extracted under bench/out (cached by commit); None if the ref is unknown."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        log(f"cost: baseline {ref} is not a commit of this repository; no side-by-side figures")
        return None
    folder = OUT / f"baseline-{commit[:12]}"
    if not (folder / "src" / "archiver").is_dir():
        with tempfile.TemporaryFile() as archive:
            subprocess.run(["git", "archive", commit, "src"], stdout=archive, cwd=REPO, check=True)
            archive.seek(0)
            with tarfile.open(fileobj=archive) as tar:
                tar.extractall(folder, filter="data")
    return folder / "src"


def priced(by_store: dict[str, dict[str, int]], objects: int) -> dict[str, Any]:
    """Requests by store and kind, and S3 dollars per million objects against the floor."""
    requests = {
        role: {kind: use.get(kind, 0) for kind in PRICE_PER_REQUEST} for role, use in by_store.items()
    }
    dollars = sum(count * PRICE_PER_REQUEST[kind] for use in requests.values() for kind, count in use.items())
    per_million = dollars / objects * 1e6 if objects else 0.0
    return {
        "objects": objects,
        "requests": requests,
        "dollars_per_million": per_million,
        "over_floor": per_million / FLOOR_PER_MILLION,
    }


def with_cpu(figures: dict[str, Any], cpu_seconds: float) -> dict[str, Any]:
    objects = figures["objects"] or 1
    per_object = cpu_seconds / objects
    gb_s = per_object * 1e6 * LAMBDA_MEMORY_GB
    return figures | {
        "cpu_seconds_per_object": per_object,
        "gb_s_per_million": gb_s,
        "lambda_dollars_per_million": gb_s * LAMBDA_PRICE_PER_GB_S,
    }


def _archive(env: dict[str, str], source: str, dest: str) -> dict[str, Any]:
    result = run_child(["archiver", source, dest], env=env)
    report = result["report"]
    figures = priced(report["by_store"], report["objects_archived"] + report["objects_quarantined"])
    return with_cpu(figures, result["work_cpu_seconds"]) | {"report_requests": report["requests"]}


def _variant(
    name: str, src: Path, endpoint: str, corpora: dict[str, dict[str, Any]], batches: list[int]
) -> dict[str, Any]:
    """Every path with one version of the code (its `src/` first on PYTHONPATH)."""
    from archiver.local.moto_server import create_bucket, upload_tree

    env = aws_env(endpoint) | WORKERS | {"PYTHONPATH": str(src)}
    bucket, dest = f"src-{name}", f"s3://dst-{name}/"
    create_bucket(endpoint, f"dst-{name}")
    figures: dict[str, Any] = {"backfill": _archive(env, f"s3://{bucket}/", dest)}
    noop = run_child(["archiver", f"s3://{bucket}/", dest], env=env)["report"]["by_store"]
    figures["noop"] = {role: dict(use) for role, use in noop.items()}
    upload_tree(endpoint, bucket, Path(corpora["nightly"]["path"]))
    figures["nightly"] = _archive(env, f"s3://{bucket}/", dest)
    backfill, nightly = figures["backfill"]["over_floor"], figures["nightly"]["over_floor"]
    log(f"cost {name}: backfill {backfill:.2f}x the floor, nightly {nightly:.2f}x")
    for size in batches:
        create_bucket(endpoint, f"sqs-{name}-{size}")
        sqs_env = env | {
            "ARCHIVER_SOURCE": f"s3://stream-{name}/",
            "ARCHIVER_DEST": f"s3://sqs-{name}-{size}/",
        }
        result = run_child(["archiver-sqs", f"s3://stream-{name}/", str(size), "7"], env=sqs_env)
        if result["failed_messages"]:
            raise BenchError(f"cost {name}: {result['failed_messages']} SQS messages failed")
        sqs = with_cpu(priced(result["by_store"], result["objects"]), result["work_cpu_seconds"])
        figures[f"sqs-{size}"] = sqs | {"invocations": result["invocations"], "batch_size": size}
        log(f"cost {name}: SQS batches of {size}: {sqs['over_floor']:.2f}x")
    return figures


def cost_section(
    corpora: dict[str, dict[str, Any]], baseline_ref: str | None, batches: tuple[int, ...] = (100, 1000)
) -> dict[str, Any]:
    """The cost of every path with this checkout's code and (when given) the baseline's, side by side.

    corpora: "backfill" (30 days), "nightly" (the day after), "stream" (a busy day, for SQS).
    """
    from archiver.local.moto_server import running_moto_process

    variants = {"current": SRC}
    baseline = baseline_source(baseline_ref) if baseline_ref else None
    if baseline is not None:
        variants["baseline"] = baseline
    preload = {}
    for name in variants:
        preload[f"src-{name}"] = Path(corpora["backfill"]["path"])
        preload[f"stream-{name}"] = Path(corpora["stream"]["path"])
    results: dict[str, Any] = {"baseline_ref": baseline_ref if baseline else None, "variants": {}}
    with running_moto_process(preload=preload) as endpoint:
        for name, src in variants.items():
            results["variants"][name] = _variant(name, src, endpoint, corpora, list(batches))
    results["assumptions"] = {
        "s3_price_per_request": PRICE_PER_REQUEST,
        "floor_per_million": FLOOR_PER_MILLION,
        "sqs_requests_per_object": SQS_REQUESTS_PER_OBJECT,
        "sqs_dollars_per_million": SQS_REQUESTS_PER_OBJECT * SQS_PRICE_PER_REQUEST * 1e6,
        "lambda_memory_gb": LAMBDA_MEMORY_GB,
        "lambda_price_per_gb_s": LAMBDA_PRICE_PER_GB_S,
    }
    return results


PATHS = {
    "backfill": "backfill of 30 days",
    "nightly": "nightly, one new day",
    "sqs-100": "SQS, batches of 100",
    "sqs-1000": "SQS, batches of 1,000",
}


def cost_tables(cost: dict[str, Any]) -> list[str]:
    """The cost section's tables: dollars against the floor per path, and requests by store and kind."""
    from summary import table

    variants = cost["variants"]
    current, baseline = variants["current"], variants.get("baseline")
    rows = []
    for path, label in PATHS.items():
        now = current[path]
        before = (
            f"${baseline[path]['dollars_per_million']:.2f} ({baseline[path]['over_floor']:.2f}x)"
            if baseline
            else "-"
        )
        sqs = f"{SQS_REQUESTS_PER_OBJECT:.1f}" if path.startswith("sqs") else "-"
        rows.append(
            (
                label,
                before,
                f"${now['dollars_per_million']:.2f} ({now['over_floor']:.2f}x)",
                f"<= {GOALS[path]}x",
                sqs,
                f"{now['cpu_seconds_per_object'] * 1000:.2f} ms",
                f"{now['gb_s_per_million']:,.0f}",
                f"${now['lambda_dollars_per_million']:.3f}",
            )
        )
    out = [
        table(
            f"Cost: S3 $ per million objects (floor ${FLOOR_PER_MILLION:.2f}: a GET each), moto, one process",
            rows,
            ("path", "baseline", "now", "goal", "SQS req/object", "CPU/object", "GB-s/M", "Lambda $/M"),
        )
    ]
    request_rows = []
    for path, label in PATHS.items():
        for name, figures in variants.items():
            for role, use in figures[path]["requests"].items():
                shown = "  ".join(f"{kind} {count:,}" for kind, count in use.items() if count)
                request_rows.append((f"{label} [{name}]", role, f"{figures[path]['objects']:,}", shown))
    out.append(
        table("Cost: requests by store and kind", request_rows, ("path", "store", "objects", "requests"))
    )
    return out


def cost_targets(cost: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 15's cost goals, met or missed with their ratio; and the no-op rerun's LISTs only."""
    from summary import target_row

    variants = cost["variants"]
    current, baseline = variants["current"], variants.get("baseline")
    rows = []
    for path, label in PATHS.items():
        ratio = current[path]["over_floor"]
        before = f", baseline {baseline[path]['over_floor']:.2f}x" if baseline else ""
        rows.append(
            target_row(
                f"cost, {label}: S3 $ / floor",
                ratio,
                GOALS[path],
                "<=",
                f"{ratio:.2f}x{before}",
                f"<= {GOALS[path]}x",
            )
        )
    noop = current["noop"]
    paid = sum(use.get(kind, 0) for use in noop.values() for kind in ("get", "put", "head"))
    lists = sum(use.get("list", 0) for use in noop.values())
    rows.append(
        target_row("cost, no-op rerun: GET/PUT/HEAD", paid, 0, "==", f"{paid} ({lists} LISTs)", "== 0")
    )
    if baseline:
        before = sum(use.get("list", 0) for use in baseline["noop"].values())
        rows.append(
            target_row("cost, no-op rerun: LISTs vs baseline", lists, before, "<=", f"{lists} vs {before}")
        )
    return rows
