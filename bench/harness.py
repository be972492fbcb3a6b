"""Running measured children: every task is its own process (bench/measure.py) printing one JSON line."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SRC = REPO / "src"
OUT = BENCH / "out"
WORK = OUT / "work"
MEASURE = BENCH / "measure.py"
RESULTS = OUT / "results.json"

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class BenchError(RuntimeError):
    """A measured child failed or produced something unusable."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["ARCHIVER_NO_PROGRESS"] = "1"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def aws_env(endpoint: str) -> dict[str, str]:
    return child_env({"AWS_ENDPOINT_URL": endpoint, **DUMMY_AWS})


def run_child(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    python_args: Iterable[str] = (),
    timeout: float = 3600,
    allow_failures: bool = False,
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
    failed = report is not None and (report.get("objects_failed") or report.get("failures"))
    if failed and not allow_failures:
        raise BenchError(f"archiver run {args[1:]} left unreadable objects: {report.get('failures')[:3]}")
    return result


def total_cpu(result: dict[str, Any]) -> float:
    """The child's CPU seconds plus its descendants' (the archiver's parse pool)."""
    return float(result.get("cpu_seconds", 0.0)) + float(result.get("cpu_seconds_descendants") or 0.0)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


@contextlib.contextmanager
def exclusive_bench() -> Iterator[None]:
    """One bench at a time on this machine: they share bench/out and would time each other."""
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


def git_head() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
