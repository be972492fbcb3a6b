"""AWS Lambda's execution environment, reproduced: a handler run in a subprocess that sees what Lambda sees.

- a private mount namespace (`unshare -m`): every mount read-only but /tmp (bound
  writable), /proc, /sys and /dev; /dev/shm replaced by a read-only empty folder, so
  POSIX semaphores (multiprocessing's locks, queues and pools) fail as they do there;
- HOME unset, at most 2 CPUs (`taskset`), the working directory read-only (the checkout and the
  virtualenv are bound read-only even when they live under /tmp, as a CI clone may);
- `__main__` is `invoke.py`, run by path as Lambda runs its runtime, which refuses to
  be imported again;
- every process in it records the writes it attempts outside /tmp and the processes
  it starts (`sandbox_site/sitecustomize.py`), so a failure swallowed somewhere still
  shows.

The moto server and the fake Workato API stay in the test process, on loopback (the
namespace keeps the network). It needs root or CAP_SYS_ADMIN, as CI has: without
them the test fails with a message saying so, it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from archiver.engine.children import BOOTSTRAP

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
LAMBDA_CPUS = 2

SETUP = r"""
set -eu
mount --make-rprivate /
mount --bind /tmp /tmp
for point in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do
  case "$point" in
    /tmp|/tmp/*|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;;
    *) mount -o remount,bind,ro "$point" ;;
  esac
done
for place in "$ARCHIVER_SANDBOX_REPO" "$ARCHIVER_SANDBOX_PREFIX"; do
  case "$place" in
    /tmp/*) mount --bind "$place" "$place" && mount -o remount,bind,ro "$place" ;;
  esac
done
mount --bind "$ARCHIVER_SANDBOX_EMPTY" /dev/shm
mount -o remount,bind,ro /dev/shm
for place in / "$ARCHIVER_SANDBOX_REPO" "$ARCHIVER_SANDBOX_PREFIX" /root /dev/shm; do
  if touch "$place/.sandbox-probe" 2>/dev/null; then
    echo "sandbox: $place is writable" >&2
    exit 97
  fi
done
touch /tmp/.sandbox-probe-$$
rm /tmp/.sandbox-probe-$$
exec "$@"
"""
"""Run by `sh` in the new mount namespace, then replaced by the command."""


@dataclass
class SandboxRun:
    """What one handler invocation in the sandbox did."""

    returncode: int
    stdout: str
    stderr: str
    writes: list[dict[str, Any]] = field(default_factory=list)  # attempted outside /tmp
    started: list[list[str]] = field(default_factory=list)  # every process started, by any process in it

    @property
    def answer(self) -> dict[str, Any]:
        """The handler's answer; the run must have succeeded and written nothing outside /tmp."""
        assert self.returncode == 0, self.stderr[-3000:]
        assert self.writes == [], self.writes[:10]
        line = next(line for line in self.stdout.splitlines() if line.startswith("ANSWER "))
        answer: dict[str, Any] = json.loads(line[len("ANSWER ") :])
        return answer

    @property
    def workers_started(self) -> int:
        """How many of the engine's worker processes were started."""
        return sum(1 for command in self.started if BOOTSTRAP in command)


def require_unshare() -> None:
    """Fail (never skip) where the sandbox cannot be built, saying what it needs."""
    missing = [tool for tool in ("unshare", "taskset", "mount", "sh") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the Lambda sandbox needs {', '.join(missing)} (util-linux)")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --make-rprivate / && mount --bind /tmp /tmp"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.fail(
            "the Lambda sandbox needs `unshare -m` and mount (root or CAP_SYS_ADMIN, as in CI): "
            + (probe.stderr.strip().splitlines() or ["no error message"])[-1]
        )


def _cpus() -> str:
    return ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0))[:LAMBDA_CPUS])


def run_handler(
    handler: str, event: dict[str, Any], environ: dict[str, str] | None = None, *, sandboxed: bool = True
) -> SandboxRun:
    """`archiver.aws.handlers.<handler>(event, context)` in the sandbox, configured by the environment.

    `sandboxed=False` runs the same process (`invoke.py` as `__main__`, writes and
    starts recorded) on the ordinary machine, to tell one condition from the others.
    """
    if sandboxed:
        require_unshare()
    folder = Path(tempfile.mkdtemp(prefix="lambda-sandbox-", dir="/tmp"))
    try:
        (folder / "empty").mkdir()
        event_path = folder / "event.json"
        event_path.write_text(json.dumps(event))
        audit = folder / "audit.jsonl"
        env = {name: value for name, value in (environ or os.environ).items() if name != "HOME"}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE / "sandbox_site"), str(REPO / "src"), str(REPO)])
        env["ARCHIVER_SANDBOX_AUDIT"] = str(audit)
        env["ARCHIVER_SANDBOX_EMPTY"] = str(folder / "empty")
        env["ARCHIVER_SANDBOX_REPO"] = str(REPO)
        env["ARCHIVER_SANDBOX_PREFIX"] = sys.prefix
        if len(os.sched_getaffinity(0)) < LAMBDA_CPUS:
            env.setdefault("ARCHIVER_PARSE_WORKERS", str(LAMBDA_CPUS))  # Lambda reports 2 vCPUs
        command = [sys.executable, str(HERE / "invoke.py"), handler, str(event_path)]
        if sandboxed:
            command = ["unshare", "-m", "sh", "-c", SETUP, "sandbox", "taskset", "-c", _cpus(), *command]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=600,
        )
        assert done.returncode != 97, done.stderr  # the sandbox itself is not what Lambda's is
        records = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
        return SandboxRun(
            done.returncode,
            done.stdout,
            done.stderr,
            writes=[record for record in records if "write" in record],
            started=[record["started"] for record in records if "started" in record],
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
