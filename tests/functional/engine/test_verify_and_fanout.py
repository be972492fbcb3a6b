"""`verify` proves an archive complete or names its gaps; units and shards run apart equal one run."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from archiver.config import Settings
from archiver.engine.api import compact
from archiver.engine.verify import verify
from archiver.local.synth import write_corpus
from archiver.storage.localfs import LocalStore
from tests.functional.readback import data_files, read_rows

TABLES = ("jobs", "job_lines", "activity", "quarantine")
SRC = str(Path(__file__).resolve().parents[3] / "src")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "archiver", *args], capture_output=True, text=True, env=env, timeout=120
    )


def rows(root: Path) -> dict[str, list[str]]:
    return {table: sorted(map(repr, read_rows(root, table))) for table in TABLES}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source")
    write_corpus(root, jobs=60, seed=5, start=dt.date(2024, 8, 28), days=8)
    return root


@pytest.fixture(scope="module")
def clean(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("clean")
    asyncio.run(compact(LocalStore(source), LocalStore(dest), Settings()))
    return dest


def test_verify_passes_on_a_complete_archive(source: Path, clean: Path) -> None:
    # WHEN verify checks the whole source against a clean archive
    report = asyncio.run(verify(LocalStore(source), LocalStore(clean)))
    # THEN every JSON object is archived or quarantined and every named file exists
    assert report.ok, report.as_dict()
    assert report.objects_checked == report.objects_archived + report.objects_quarantined
    assert report.objects_quarantined > 0
    assert cli("verify", str(source), str(clean)).returncode == 0


def test_verify_finds_a_deleted_archive_file_and_an_object_never_archived(
    source: Path, clean: Path, tmp_path: Path
) -> None:
    # GIVEN a copy of the archive with one data file deleted, and a source with one object added later
    archive_copy, source_copy = tmp_path / "archive", tmp_path / "source"
    subprocess.run(["cp", "-a", str(clean), str(archive_copy)], check=True)
    subprocess.run(["cp", "-al", str(source), str(source_copy)], check=True)
    victim = next(name for name in data_files(archive_copy) if name.startswith("jobs/"))
    (archive_copy / victim).unlink()
    job_key = next(
        str(path.relative_to(source_copy))
        for path in sorted(source_copy.rglob("*.json"))
        if "/jobs/" in str(path)
    )
    late = job_key.rsplit("/", 1)[0] + "/late-arrival.json"
    (source_copy / late).write_bytes((source_copy / job_key).read_bytes())
    # WHEN verify checks them, as a function and as a command
    report = asyncio.run(verify(LocalStore(source_copy), LocalStore(archive_copy)))
    result = cli("verify", str(source_copy), str(archive_copy), "--json")
    # THEN both gaps are named, and the command exits 5 with its report on stdout
    assert not report.ok
    assert report.missing_files == [victim]
    assert report.not_archived == [late]
    assert result.returncode == 5, result.stderr
    printed = orjson.loads(result.stdout)
    assert printed["missing_files"] == [victim] and printed["not_archived"] == [late]
    assert result.stderr.startswith("archiver: error: the archive has gaps")


def test_units_from_plan_run_in_parallel_processes_equal_one_run(
    source: Path, clean: Path, tmp_path: Path
) -> None:
    # GIVEN the units `plan` prints
    planned = cli("plan", str(source))
    units = [orjson.loads(line)["unit"] for line in planned.stdout.splitlines()]
    assert planned.returncode == 0 and len(units) > 3 and any(unit.startswith("loose=") for unit in units)
    # WHEN every unit runs in its own process, all at once, into one destination
    dest = tmp_path / "fanout"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "archiver", "compact", str(source), str(dest), "--unit", unit, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for unit in units
    ]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    # THEN each finished, and together they hold exactly what one clean run holds
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outcomes]
    assert rows(dest) == rows(clean)
    assert asyncio.run(verify(LocalStore(source), LocalStore(dest))).ok


def test_shards_run_in_parallel_processes_equal_one_run(source: Path, clean: Path, tmp_path: Path) -> None:
    # GIVEN three shards of the same source, started at the same time into one destination
    dest = tmp_path / "shards"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "archiver",
                "compact",
                str(source),
                str(dest),
                "--shard",
                f"{i}/3",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(3)
    ]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    reports = [orjson.loads(out) for out, _ in outcomes]
    # THEN every unit was taken by exactly one shard, and the archive equals one clean run
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in outcomes]
    assert sum(report["units"] for report in reports) == len(cli("plan", str(source)).stdout.splitlines())
    assert rows(dest) == rows(clean)
