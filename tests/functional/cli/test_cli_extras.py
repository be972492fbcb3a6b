"""The plain install is enough for compact, verify and plan; replay and demo say what to install.

moto comes only with the `local` extra. These runs hide it from a child interpreter (a
`sitecustomize` marks it missing in `sys.modules`, so both `import moto` and
`importlib.util.find_spec("moto")` fail as they would without the extra), then use
the command line as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from archiver.local.synth import write_corpus
from tests.functional.cli.test_cli import cli_env

HIDE_MOTO = """
import sys
sys.modules["moto"] = None  # as if `pip install archiver` had been run without [local]
"""


@pytest.fixture(scope="module")
def without_moto(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose interpreters cannot import moto."""
    hook = tmp_path_factory.mktemp("hide-moto")
    (hook / "sitecustomize.py").write_text(HIDE_MOTO, encoding="utf-8")
    env = cli_env(None, ARCHIVER_NO_PROGRESS="1")
    env["PYTHONPATH"] = f"{hook}:{env['PYTHONPATH']}"
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archiver", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_hook_really_hides_moto(without_moto: dict[str, str], tmp_path: Path) -> None:
    # GIVEN the environment without moto
    probe = "import importlib.util, sys; print(importlib.util.find_spec('moto')); import moto"
    # WHEN a child looks for moto and imports it
    done = subprocess.run([sys.executable, "-c", probe], env=without_moto, capture_output=True, text=True)
    # THEN it is not found
    assert done.stdout.strip() == "None"
    assert "ModuleNotFoundError" in done.stderr


@pytest.mark.parametrize("command", [["demo"], ["replay", "corpus"]], ids=["demo", "replay"])
def test_replay_and_demo_name_the_extra_in_one_line(
    command: list[str], without_moto: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN no moto, and a folder to replay
    (tmp_path / "corpus").mkdir()
    # WHEN the command that needs the embedded S3 server is run
    done = run(command, without_moto, tmp_path)
    # THEN it exits 2 with one line saying what to install, and touches nothing
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("archiver: error: ")
    assert "pip install 'archiver[local]'" in lines[0]
    assert not (tmp_path / "archive").exists()


def test_compact_plan_and_verify_need_no_moto(without_moto: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a small corpus in a local folder and no moto
    write_corpus(tmp_path / "source", jobs=40, seed=3)
    # WHEN it is planned, compacted and verified
    plan = run(["plan", "source"], without_moto, tmp_path)
    compact = run(["compact", "source", "archive", "--json"], without_moto, tmp_path)
    verify = run(["verify", "source", "archive", "--json"], without_moto, tmp_path)
    # THEN every command works
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.strip()
    assert compact.returncode == 0, compact.stderr
    assert verify.returncode == 0, verify.stderr
