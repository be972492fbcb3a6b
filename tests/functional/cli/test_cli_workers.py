"""`compact` whose worker processes cannot start: one line, exit 2, no unit failed one by one."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import pytest

from archiver.cli.main import main
from archiver.local.synth import write_corpus
from tests.functional.readback import data_files


@pytest.mark.parametrize(
    ("interpreter", "says"),
    [("/nonexistent/python3", "No such file or directory"), ("false", "before it was ready")],
)
def test_workers_that_cannot_start_exit_2_with_one_line_naming_the_way_out(
    interpreter: str,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN several days to compact on two workers, by a program whose sys.executable cannot run them
    write_corpus(tmp_path / "source", jobs=20, seed=3, start=dt.date(2024, 8, 28), days=3)
    monkeypatch.setattr(sys, "executable", shutil.which(interpreter) or interpreter)
    monkeypatch.setenv("ARCHIVER_PARSE_WORKERS", "2")
    # WHEN compact runs
    code = main(["compact", str(tmp_path / "source"), str(tmp_path / "archive"), "--json"])
    # THEN it exits 2 with one line saying what could not start, why, and the setting that avoids it
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err
    assert "could not start 2 shard processes" in out.err and says in out.err
    assert "ARCHIVER_PARSE_WORKERS=1" in out.err
    # AND nothing was archived
    assert not (tmp_path / "archive").exists() or data_files(tmp_path / "archive") == []
