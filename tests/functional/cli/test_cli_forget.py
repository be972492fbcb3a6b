"""`archiver forget` from the command line: its report, its dry run, and its one-line errors."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archiver.local.synth import write_corpus
from tests.functional.cli.test_cli import (
    Invocation,
    archiver_cli,
    cli_env,
    finished,
    one_error_line,
    run_side_by_side,
    s3_objects,
    single_report,
)
from tests.functional.engine.buckets import new_bucket, put_objects

KEY = "cli forget key"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A local archive (to be copied by each test) and the e-mail of a person with activity rows in it."""
    root = tmp_path_factory.mktemp("forget-cli")
    corpus, dest = root / "corpus", root / "archive"
    write_corpus(corpus, jobs=30, seed=5, start=dt.date(2024, 8, 30), days=2)
    assert (
        archiver_cli(["compact", str(corpus), str(dest)], cli_env(None, ARCHIVER_POLICY_KEY=KEY)).returncode
        == 0
    )
    emails = [
        email
        for path in sorted(dest.glob("activity/*/*.parquet"))
        for email in pq.read_table(path, columns=["user_email"]).column(0).to_pylist()
        if email
    ]
    return dest, emails[0]


def test_forget_prints_its_report_and_a_rerun_has_nothing_left(
    archive: tuple[Path, str], tmp_path: Path
) -> None:
    # GIVEN a local archive and a person in it, and the policy key in the environment
    source, email = archive
    dest = Path(shutil.copytree(source, tmp_path / "archive"))
    env = cli_env(None, ARCHIVER_POLICY_KEY=KEY)
    # WHEN forget runs as a dry run, then for real, then again
    dry = single_report(archiver_cli(["forget", str(dest), "--email", email, "--dry-run", "--json"], env))
    real = single_report(archiver_cli(["forget", str(dest), "--email", email, "--json"], env))
    again = archiver_cli(["forget", str(dest), "--email", email], env)
    # THEN the dry run and the run report the same rows per table and day, the run names its record
    # in the erasure log, and the rerun says it removed nothing
    assert dry["dry_run"] is True and dry["erasure_log"] and real["dry_run"] is False
    assert dry["rows_removed"] == real["rows_removed"] != {}
    assert (dest / str(real["erasure_log"])).is_file()
    assert again.returncode == 0 and again.stdout.startswith("removed 0 rows and masked 0 rows")
    assert email not in (dest / str(real["erasure_log"])).read_text()


WRONG = {
    "no-key": (["--email", "a@example.com"], {}, "ARCHIVER_POLICY_KEY"),
    "both": (
        ["--email", "a@example.com", "--user-id", "7"],
        {"ARCHIVER_POLICY_KEY": KEY},
        "not allowed with",
    ),
    "neither": ([], {"ARCHIVER_POLICY_KEY": KEY}, "one of the arguments --user-id --email is required"),
    "not-an-email": (["--email", "nobody"], {"ARCHIVER_POLICY_KEY": KEY}, "not an e-mail address"),
    "empty-id": (["--user-id", " "], {"ARCHIVER_POLICY_KEY": KEY}, "user id is empty"),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_forget_errors_are_one_line_exit_2_and_nothing_is_written(case: str, moto_endpoint: str) -> None:
    # GIVEN an archive bucket holding one object; WHEN forget runs with a wrong argument or without a key
    dest = new_bucket(moto_endpoint, "forget-cli")
    put_objects(moto_endpoint, dest, {"marker.txt": b"not an archive yet"})
    arguments, extra, message = WRONG[case]
    result = finished(
        run_side_by_side(
            {case: Invocation(["forget", f"s3://{dest}/", *arguments], cli_env(moto_endpoint, **extra))}
        )[case]
    )
    # THEN exit 2 with one line that says what is wrong, and nothing is written
    assert message in one_error_line(result, 2)
    assert list(s3_objects(moto_endpoint, dest)) == ["marker.txt"]
