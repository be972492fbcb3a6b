"""`-v` and `-vv` show the archiver's log on stderr; it never shows credentials or object contents."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from archiver.cli.logs import configure_logging
from archiver.local.synth import KIND_ACTIVITY, KIND_JOB, generate, write_corpus
from tests.functional.cli.test_cli import cli_env

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-SENTINEL-SECRET"
ACCESS_KEY = "AKIASENTINELKEYID0001"
TOKEN = "workato-token-SENTINEL-0001"
JOBS, SEED = 40, 11


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logging")
    write_corpus(root / "source", jobs=JOBS, seed=SEED)
    return root


def body_texts() -> set[str]:
    """Distinctive strings from inside the objects: job titles and names, event users, recipe names."""
    texts: set[str] = set()
    for obj in generate(JOBS, seed=SEED):
        if obj.truth.kind not in (KIND_JOB, KIND_ACTIVITY):
            continue
        text = obj.body.decode("utf-8")
        for marker in ('"title":', '"recipe_name":', '"user_name":', '"account_name":'):
            start = text.find(marker)
            if start >= 0:
                value = text[start + len(marker) :].lstrip().split('"')[1]
                if len(value) >= 8:
                    texts.add(value)
    return texts


def compact(corpus: Path, dest: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(
        None,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_SESSION_TOKEN=TOKEN,
        WORKATO_API_TOKEN=TOKEN,
        ARCHIVER_NO_PROGRESS="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "archiver", *flags, "compact", "source", dest],
        env=env,
        cwd=corpus,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_debug_log_shows_the_run_but_no_secret_and_no_object_content(corpus: Path) -> None:
    # GIVEN a local corpus, and credentials and a token in the environment
    texts = body_texts()
    assert texts
    # WHEN it is compacted with -vv
    done = compact(corpus, "archive-vv", "-vv")
    # THEN stderr carries the archiver's INFO and DEBUG log
    assert done.returncode == 0, done.stderr
    assert " DEBUG archiver." in done.stderr and " INFO archiver." in done.stderr
    # AND no credential, token or text from inside an object
    for secret in (SECRET, ACCESS_KEY, TOKEN):
        assert secret not in done.stderr
    leaked = sorted(text for text in texts if text in done.stderr)
    assert leaked == []
    # AND stdout is still the report alone
    assert "listed" in done.stdout and "DEBUG" not in done.stdout


def test_verbosity_levels(corpus: Path) -> None:
    # GIVEN the same corpus
    # WHEN it is compacted quietly, with -v, and with -v after the command name
    quiet = compact(corpus, "archive-quiet")
    info = compact(corpus, "archive-v", "-v")
    # THEN the quiet run logs nothing, -v logs INFO but no DEBUG
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert info.returncode == 0, info.stderr
    assert " INFO archiver." in info.stderr and " DEBUG " not in info.stderr


def test_verbose_is_accepted_after_the_command_too(corpus: Path) -> None:
    # GIVEN the same corpus
    env = cli_env(None, ARCHIVER_NO_PROGRESS="1")
    # WHEN -vv follows the command name
    done = subprocess.run(
        [sys.executable, "-m", "archiver", "plan", "source", "-vv"],
        env=env,
        cwd=corpus,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # THEN it counts: DEBUG lines on stderr, and stdout holds only the plan
    assert done.returncode == 0, done.stderr
    assert " DEBUG archiver." in done.stderr
    assert all(orjson.loads(line)["unit"] for line in done.stdout.splitlines())


def test_the_log_follows_stderr_when_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the command line's logging configured while stderr is one stream
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logger = configure_logging(1)
    # WHEN stderr is replaced (and the first stream closed) before a record arrives
    monkeypatch.setattr(sys, "stderr", second)
    first.close()
    logging.getLogger("archiver.engine.run").info("units planned")
    # THEN the record reaches the stream stderr is now, and nothing fails
    assert "INFO archiver.engine.run: units planned" in second.getvalue()
    assert logger.propagate is False
