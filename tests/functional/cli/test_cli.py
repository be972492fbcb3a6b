"""The command line as a user runs it: `python -m archiver ...` in a subprocess, against moto over HTTP.

Every run gets the standard AWS configuration through its environment only
(AWS_ENDPOINT_URL, dummy credentials, a region), which is all the contract asks
for. Expected values come from the synthetic corpus' own truth, never from the
archiver's reading of it.

Starting Python with the archiver's imports costs about a second, so the short
command lines whose answer is an error (or `--version`) run side by side in one
module fixture; each test then checks one of them.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

import archiver
from archiver.local.moto_server import MOTO_CREDENTIALS, create_bucket, running_moto_process, upload_tree
from archiver.local.synth import CorpusSummary, write_corpus
from tests.functional.iceberg import duckdb_with_iceberg, local_catalog, pyiceberg_rows
from tests.functional.iceberg import table as table_of
from tests.functional.readback import data_files, read_rows

SRC = Path(archiver.__file__).resolve().parents[1]
START = dt.date(2024, 8, 28)
DAYS = 8
REPORT_KEYS = {
    "objects_listed",
    "objects_archived",
    "objects_skipped",
    "objects_quarantined",
    "rows",
    "files_written",
    "bytes_read",
    "bytes_written",
    "requests",
    "seconds",
}
REQUEST_KINDS = {"list", "get", "put", "delete", "head"}
TABLES = ("jobs", "job_lines", "activity", "quarantine")
UNREACHABLE_TIMEOUT = 15.0
"""Seconds a run against a closed port may take: one attempt is about a second with start-up (more on a
loaded machine); the default retries would take over 30 s."""

Outcome = subprocess.CompletedProcess[str] | subprocess.TimeoutExpired


# --------------------------------------------------------------------------- running the CLI


def cli_env(endpoint: str | None, **extra: str) -> dict[str, str]:
    """This process's environment made hermetic: standard AWS settings aimed at `endpoint`.

    A developer's profiles and config files must not leak in, and moto's page size
    for this process is dropped so that servers the child embeds behave as for a user.
    """
    env = dict(os.environ)
    for variable in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "MOTO_S3_DEFAULT_MAX_KEYS",
        "ARCHIVER_NO_PROGRESS",
    ):
        env.pop(variable, None)
    env.update(
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
        AWS_ACCESS_KEY_ID=MOTO_CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=MOTO_CREDENTIALS["aws_secret_access_key"],
        AWS_DEFAULT_REGION=MOTO_CREDENTIALS["region_name"],
        AWS_REGION=MOTO_CREDENTIALS["region_name"],
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    )
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env


def archiver_cli(
    args: Sequence[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m archiver ARGS` as a user would type it; stdout and stderr captured apart."""
    return subprocess.run(
        [sys.executable, "-m", "archiver", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True, slots=True)
class Invocation:
    args: list[str]
    env: dict[str, str]
    timeout: float = 120


def run_side_by_side(invocations: dict[str, Invocation]) -> dict[str, Outcome]:
    """Run independent command lines at the same time; a timeout is kept as the outcome."""

    def one(invocation: Invocation) -> Outcome:
        try:
            return archiver_cli(invocation.args, invocation.env, timeout=invocation.timeout)
        except subprocess.TimeoutExpired as expired:
            return expired

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {name: pool.submit(one, invocation) for name, invocation in invocations.items()}
        return {name: future.result() for name, future in futures.items()}


def finished(outcome: Outcome) -> subprocess.CompletedProcess[str]:
    if isinstance(outcome, subprocess.TimeoutExpired):
        raise outcome
    return outcome


def single_report(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """stdout must be exactly one JSON object on one line, and nothing else."""
    assert result.stdout.endswith("\n"), result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    report = json.loads(lines[0])
    assert isinstance(report, dict)
    return report


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *, stdout: str | None = "") -> str:
    """Exit `code`, exactly one `archiver: error:` line on stderr and no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("archiver: error: "), lines[0]
    if stdout is not None:
        assert result.stdout == stdout
    return lines[0]


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True, slots=True)
class Corpus:
    root: Path
    summary: CorpusSummary
    bucket: str
    json_bytes: int  # bytes of every object the archiver reads (keys ending .json)


def new_bucket(endpoint: str) -> str:
    bucket = f"cli-{uuid.uuid4().hex[:16]}"
    create_bucket(endpoint, bucket)
    return bucket


def s3_objects(endpoint: str, bucket: str) -> dict[str, int]:
    """key -> size of everything in a bucket."""
    client = boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=endpoint)
    try:
        found: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.update((item["Key"], item["Size"]) for item in page.get("Contents", ()))
        return found
    finally:
        client.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Corpus:
    """A small corpus on disk and in a source bucket of the session's moto server."""
    root = tmp_path_factory.mktemp("cli-corpus")
    summary = write_corpus(root, jobs=30, seed=3, start=START, days=DAYS)
    bucket = new_bucket(moto_endpoint)
    upload_tree(moto_endpoint, bucket, root)
    json_bytes = sum(path.stat().st_size for path in root.rglob("*") if path.name.lower().endswith(".json"))
    return Corpus(root, summary, bucket, json_bytes)


@pytest.fixture
def env(moto_endpoint: str) -> dict[str, str]:
    return cli_env(moto_endpoint)


def assert_report_matches_corpus(report: dict[str, object], corpus: Corpus) -> None:
    summary = corpus.summary
    assert set(report) >= REPORT_KEYS
    assert report["objects_listed"] == summary.objects
    assert report["objects_skipped"] == summary.skipped
    assert report["objects_quarantined"] == summary.quarantined
    assert report["objects_archived"] == summary.objects - summary.skipped - summary.quarantined
    assert report["rows"] == {
        "jobs": summary.jobs,
        "job_lines": summary.job_lines,
        "activity": summary.activity_events,
    }
    # A first run into an empty archive reads every JSON object exactly once, and nothing else.
    assert report["bytes_read"] == corpus.json_bytes
    requests = report["requests"]
    assert isinstance(requests, dict)
    assert set(requests) == REQUEST_KINDS
    assert all(isinstance(count, int) and count >= 0 for count in requests.values())
    assert requests["get"] >= summary.objects - summary.skipped
    assert requests["list"] >= 1
    files_written = report["files_written"]
    assert isinstance(files_written, int) and files_written >= len(TABLES)  # every table holds rows
    assert requests["put"] >= files_written
    bytes_written = report["bytes_written"]
    assert isinstance(bytes_written, int) and bytes_written > 0
    seconds = report["seconds"]
    assert isinstance(seconds, float) and seconds > 0


# --------------------------------------------------------------------------- compact


def test_compact_prints_one_json_report_that_matches_the_corpus(
    corpus: Corpus, env: dict[str, str], moto_endpoint: str
) -> None:
    # GIVEN a source bucket holding the corpus, quarantined objects included, and an empty archive bucket
    dest = new_bucket(moto_endpoint)
    assert corpus.summary.quarantined > 0
    # WHEN a user runs compact with --json
    result = archiver_cli(["compact", f"s3://{corpus.bucket}/", f"s3://{dest}/", "--json"], env)
    # THEN it exits 0 and prints one JSON object, the run report, whose counts match the corpus
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # stderr is not a terminal: no progress bar, no chatter
    report = single_report(result)
    assert_report_matches_corpus(report, corpus)
    # AND the archive bucket holds the contract's layout, with the files the report counts
    stored = s3_objects(moto_endpoint, dest)
    assert {key.split("/", 1)[0] for key in stored} == {*TABLES, "_archiver"}
    data = {key: size for key, size in stored.items() if not key.startswith("_archiver/")}
    assert all(key.endswith(".parquet") for key in data)
    assert report["files_written"] == len(data)
    bytes_written = report["bytes_written"]
    assert isinstance(bytes_written, int) and bytes_written >= sum(data.values())


def test_compact_without_json_prints_a_short_summary(corpus: Corpus, tmp_path: Path) -> None:
    # GIVEN the corpus folder, an empty archive folder and a window of three layout days
    since, until = dt.date(2024, 8, 30), dt.date(2024, 9, 1)
    # WHEN compact runs without --json
    result = archiver_cli(
        ["compact", str(corpus.root), str(tmp_path / "out"), "--since", str(since), "--until", str(until)],
        cli_env(None),
    )
    # THEN it exits 0 and tells a person what it did, with the window's jobs only
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("listed ")
    jobs = sum(n for day, n in corpus.summary.expected.jobs_by_day.items() if since <= day <= until)
    assert 0 < jobs < corpus.summary.jobs
    assert f"rows: {jobs} jobs" in result.stdout


def test_compact_works_between_local_folders(corpus: Corpus, tmp_path: Path) -> None:
    # GIVEN the corpus in a local folder and a destination folder that does not exist yet
    dest = tmp_path / "archive"
    # WHEN compact runs folder to folder, with no S3 settings at all
    result = archiver_cli(["compact", str(corpus.root), str(dest), "--json"], cli_env(None))
    # THEN the report matches the corpus and the archive reads back with DuckDB
    assert result.returncode == 0, result.stderr
    report = single_report(result)
    assert_report_matches_corpus(report, corpus)
    assert report["files_written"] == len([key for key in data_files(dest) if key.endswith(".parquet")])
    expected = corpus.summary.expected
    jobs = read_rows(dest, "jobs")
    assert len(jobs) == len(expected.finals)
    assert {row["job_id"] for row in jobs} == set(expected.finals)
    assert len(read_rows(dest, "job_lines")) == expected.job_lines
    assert len(read_rows(dest, "activity")) == expected.activity
    assert {row["source_key"]: row["reason"] for row in read_rows(dest, "quarantine")} == expected.quarantine


def test_json_stays_alone_on_stdout_while_a_progress_bar_draws_on_a_terminal(
    corpus: Corpus, tmp_path: Path
) -> None:
    # GIVEN stderr is a terminal (a pseudo-terminal 100 columns wide: tqdm draws nothing at width 0)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    screen = bytearray()

    def watch_terminal() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            screen.extend(chunk)

    # WHEN compact runs with --json and stdout is a pipe
    process = subprocess.Popen(
        [sys.executable, "-m", "archiver", "compact", str(corpus.root), str(tmp_path / "out"), "--json"],
        env=cli_env(None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    watcher = threading.Thread(target=watch_terminal, daemon=True)
    watcher.start()
    stdout, _ = process.communicate(timeout=120)
    watcher.join(10)
    os.close(controller)
    # THEN the bar went to the terminal, and stdout holds the report and nothing else
    assert process.returncode == 0, screen.decode(errors="replace")
    assert b"archiving" in screen
    lines = stdout.decode().splitlines()
    assert len(lines) == 1, stdout
    assert json.loads(lines[0])["objects_listed"] == corpus.summary.objects


# ------------------------------------------------------------------- quick command lines, side by side

BAD_ARGUMENTS: dict[str, tuple[list[str], str]] = {
    # case: (arguments with {src} and {dst} buckets, what the error line must mention)
    "impossible-date": (["compact", "s3://{src}/", "s3://{dst}/", "--since", "2024-09-31"], "2024-09-31"),
    "since-after-until": (
        ["compact", "s3://{src}/", "s3://{dst}/", "--since", "2024-09-05", "--until", "2024-09-01"],
        "after",
    ),
    "unknown-command": (["frobnicate", "s3://{src}/"], "frobnicate"),
    "no-bucket": (["compact", "s3://", "s3://{dst}/"], "s3://"),
    "bad-bucket-name": (["compact", "s3://Bad_Bucket!", "s3://{dst}/"], "Bad_Bucket!"),
    "bad-dest-bucket-name": (["compact", "s3://{src}/", "s3://Bad_Bucket!/x"], "Bad_Bucket!"),
    "ftp-source": (["compact", "ftp://x", "s3://{dst}/"], "ftp://x"),
}


@dataclass(frozen=True, slots=True)
class QuickRuns:
    dest: str  # an archive bucket every S3 case points at; nothing may land in it
    absent: str  # a bucket name that does not exist
    folders: dict[str, Path]
    outcomes: dict[str, Outcome] = field(repr=False)


@pytest.fixture(scope="module")
def quick(corpus: Corpus, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> QuickRuns:
    """Every short command line of this module, run side by side once."""
    env = cli_env(moto_endpoint)
    dest = new_bucket(moto_endpoint)
    absent = f"absent-{uuid.uuid4().hex[:12]}"
    scratch = tmp_path_factory.mktemp("quick")
    precious = scratch / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = int(probe.getsockname()[1])
    unreachable = cli_env(f"http://127.0.0.1:{closed_port}", AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")
    invocations = {
        name: Invocation([arg.format(src=corpus.bucket, dst=dest) for arg in args], env)
        for name, (args, _) in BAD_ARGUMENTS.items()
    }
    invocations |= {
        "missing-source-bucket": Invocation(["compact", f"s3://{absent}/", f"s3://{dest}/", "--json"], env),
        "missing-dest-bucket": Invocation(["compact", f"s3://{corpus.bucket}/", f"s3://{absent}/"], env),
        "missing-source-folder": Invocation(["compact", str(scratch / "nowhere"), str(scratch / "o1")], env),
        "unreachable": Invocation(
            ["compact", "s3://src/", "s3://dst/", "--json"], unreachable, timeout=UNREACHABLE_TIMEOUT
        ),
        "replay-into-foreign-folder": Invocation(
            ["replay", str(corpus.root), "--out", str(precious), "--json"], cli_env(None)
        ),
        "replay-missing-folder": Invocation(
            ["replay", str(scratch / "nowhere"), "--out", str(scratch / "o2")], cli_env(None)
        ),
        "version": Invocation(["--version"], cli_env(None)),
        "bad-payload-level": Invocation(
            ["compact", f"s3://{corpus.bucket}/", f"s3://{dest}/"],
            cli_env(moto_endpoint, ARCHIVER_PAYLOAD_COMPRESSION_LEVEL="23"),
        ),
    }
    outcomes = run_side_by_side(invocations)
    return QuickRuns(dest, absent, {"precious": precious, "nowhere": scratch / "nowhere"}, outcomes)


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_arguments_exit_2_with_one_line(case: str, quick: QuickRuns, moto_endpoint: str) -> None:
    # GIVEN a command line that is wrong (a reachable endpoint, valid buckets elsewhere)
    _, says = BAD_ARGUMENTS[case]
    # WHEN it ran
    result = finished(quick.outcomes[case])
    # THEN exit 2, one line naming the problem, no traceback, no usage dump, and nothing written
    line = one_error_line(result, 2)
    assert says in line
    assert "usage:" not in result.stderr
    assert s3_objects(moto_endpoint, quick.dest) == {}


def test_a_setting_out_of_range_exits_2_naming_the_variable(quick: QuickRuns, moto_endpoint: str) -> None:
    # GIVEN a compact run with a zstd level zstd does not have
    result = finished(quick.outcomes["bad-payload-level"])
    # THEN exit 2, one line naming the variable and the range, and nothing written
    line = one_error_line(result, 2)
    assert "ARCHIVER_PAYLOAD_COMPRESSION_LEVEL must be a zstd level from 1 to 22" in line
    assert s3_objects(moto_endpoint, quick.dest) == {}


@pytest.mark.parametrize("case", ["missing-source-bucket", "missing-dest-bucket"])
def test_missing_bucket_exits_3_naming_it(case: str, quick: QuickRuns) -> None:
    # GIVEN one of the two buckets does not exist; WHEN compact ran
    result = finished(quick.outcomes[case])
    # THEN exit 3 and one line that names the missing bucket
    line = one_error_line(result, 3)
    assert quick.absent in line


def test_missing_local_source_folder_exits_3_naming_it(quick: QuickRuns) -> None:
    result = finished(quick.outcomes["missing-source-folder"])
    assert "nowhere" in one_error_line(result, 3)


def test_unreachable_endpoint_exits_3_quickly(quick: QuickRuns) -> None:
    # GIVEN AWS_ENDPOINT_URL names a closed port and AWS_MAX_ATTEMPTS=1 asks for a single attempt
    # WHEN compact ran (with UNREACHABLE_TIMEOUT seconds to finish)
    result = finished(quick.outcomes["unreachable"])
    # THEN it gave up quickly: exit 3 and one line naming the endpoint
    line = one_error_line(result, 3)
    assert "cannot reach" in line
    assert "127.0.0.1:" in line


def test_replay_refuses_an_out_folder_that_holds_something_else(quick: QuickRuns) -> None:
    # GIVEN an --out folder holding a user's file; WHEN replay was pointed at it
    result = finished(quick.outcomes["replay-into-foreign-folder"])
    # THEN exit 2 with one line naming it, and the folder is untouched
    precious = quick.folders["precious"]
    assert str(precious) in one_error_line(result, 2)
    assert [path.name for path in precious.iterdir()] == ["notes.txt"]
    assert (precious / "notes.txt").read_text() == "keep me"


def test_replay_of_a_missing_folder_exits_2(quick: QuickRuns) -> None:
    result = finished(quick.outcomes["replay-missing-folder"])
    assert str(quick.folders["nowhere"]) in one_error_line(result, 2)


def test_version(quick: QuickRuns) -> None:
    result = finished(quick.outcomes["version"])
    assert result.returncode == 0
    assert result.stdout == f"archiver {archiver.__version__}\n"
    assert result.stderr == ""


# ------------------------------------------------------------------- access denied (moto enforcing IAM)


def _policy(*statements: tuple[list[str], list[str]]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": a, "Resource": r} for a, r in statements],
        }
    )


LOCKED_SOURCE = "locked-source"


def _arns(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def archive_of(user: str) -> str:
    """Each user writes to an archive bucket of its own, so the runs cannot meet."""
    return f"archive-{user}"


IAM_USERS: dict[str, str | None] = {
    "nothing": None,  # no policy at all
    "read-only": _policy(
        (["s3:ListBucket", "s3:GetObject"], _arns(LOCKED_SOURCE) + _arns(archive_of("read-only")))
    ),
    "list-only": _policy(
        (["s3:ListBucket"], _arns(LOCKED_SOURCE)), (["s3:*"], _arns(archive_of("list-only")))
    ),
}
UNKNOWN_KEY = "unknown-key"


@pytest.fixture(scope="module")
def denied(corpus: Corpus) -> Iterator[dict[str, Outcome]]:
    """compact as IAM users lacking a permission, on a moto server of its own that enforces IAM.

    The server is a child process, so switching enforcement on cannot touch the
    session's server. Users, keys and policies are made first; `/moto-api/reset-auth`
    with 0 then makes moto check every request's signature and policy, as AWS does.
    """
    with running_moto_process(preload={LOCKED_SOURCE: corpus.root}) as endpoint:
        for user in [*IAM_USERS, UNKNOWN_KEY]:
            create_bucket(endpoint, archive_of(user))
        iam = boto3.session.Session(**MOTO_CREDENTIALS).client("iam", endpoint_url=endpoint)
        envs: dict[str, dict[str, str]] = {}
        try:
            for user, policy in IAM_USERS.items():
                iam.create_user(UserName=user)
                key = iam.create_access_key(UserName=user)["AccessKey"]
                if policy is not None:
                    iam.put_user_policy(UserName=user, PolicyName=f"{user}-policy", PolicyDocument=policy)
                envs[user] = cli_env(
                    endpoint,
                    AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                    AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
                )
        finally:
            iam.close()
        envs[UNKNOWN_KEY] = cli_env(endpoint, AWS_ACCESS_KEY_ID="AKIAUNKNOWN000000000")
        enforce = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
        )
        with urllib.request.urlopen(enforce, timeout=10) as answer:
            assert answer.status == 200
        outcomes = run_side_by_side(
            {
                user: Invocation(
                    ["compact", f"s3://{LOCKED_SOURCE}/", f"s3://{archive_of(user)}/", "--json"], env
                )
                for user, env in envs.items()
            }
        )
        for user, outcome in outcomes.items():
            assert not isinstance(outcome, subprocess.TimeoutExpired), user
            assert envs[user]["AWS_SECRET_ACCESS_KEY"] not in outcome.stdout + outcome.stderr
        yield outcomes


@pytest.mark.parametrize(
    ("user", "says"),
    [
        ("nothing", f"cannot list s3://{archive_of('nothing')}/"),  # the archive's ledger is read first
        (UNKNOWN_KEY, "InvalidAccessKeyId"),
        ("read-only", f"cannot write s3://{archive_of('read-only')}/"),
    ],
)
def test_denied_access_exits_3_with_one_line(user: str, says: str, denied: dict[str, Outcome]) -> None:
    # GIVEN credentials that lack a permission compact needs, or that the server does not know
    # WHEN compact ran with them
    result = finished(denied[user])
    # THEN exit 3 and one line saying access was denied, and where
    finishes = user == "read-only"  # the run got as far as its units: each one's failure is in the report
    line = one_error_line(result, 3, stdout=None if finishes else "")
    assert "access denied" in line
    assert says in line
    if finishes:
        report = single_report(result)
        failures = report["failures"]
        assert isinstance(failures, list) and failures
        assert {failure["kind"] for failure in failures} == {"AccessDeniedError"}
        assert report["units_committed"] == 0 and report["files_written"] == 0


def test_objects_denied_to_read_fail_the_run_and_say_why(denied: dict[str, Outcome], corpus: Corpus) -> None:
    # GIVEN a user who may list the source but may not read its objects
    # WHEN compact ran
    result = finished(denied["list-only"])
    # THEN the run finished with exit 3 (a missing permission, not a passing fault),
    # the report counts every JSON object as failed, and the one error line says why
    line = one_error_line(result, 3, stdout=None)
    report = single_report(result)
    readable = corpus.summary.objects - corpus.summary.skipped
    assert f"{readable} objects could not be read" in line
    assert "access denied" in line
    assert report["objects_failed"] == readable
    assert report["objects_archived"] == report["objects_quarantined"] == 0
    assert report["rows"] == {"jobs": 0, "job_lines": 0, "activity": 0}


# --------------------------------------------------------------------------- replay, synth, demo


def test_replay_archives_a_folder_into_out(corpus: Corpus, tmp_path: Path) -> None:
    # GIVEN the corpus folder
    out = tmp_path / "out"
    # WHEN replay runs with --json (its own embedded S3 server: no AWS settings needed)
    result = archiver_cli(["replay", str(corpus.root), "--out", str(out), "--json"], cli_env(None))
    # THEN one JSON report matching the corpus, and OUT holds the archive's folders and rows
    assert result.returncode == 0, result.stderr
    assert_report_matches_corpus(single_report(result), corpus)
    assert {path.name for path in out.iterdir()} == {*TABLES, "_archiver"}
    expected = corpus.summary.expected
    assert {row["job_id"] for row in read_rows(out, "jobs")} == set(expected.finals)
    assert len(read_rows(out, "job_lines")) == expected.job_lines
    assert len(read_rows(out, "activity")) == expected.activity
    assert {row["source_key"]: row["reason"] for row in read_rows(out, "quarantine")} == expected.quarantine
    # AND OUT is a local Iceberg archive: its own catalog, built from its ledger, reads the same rows
    catalog = local_catalog(out)
    for table in TABLES:
        assert len(pyiceberg_rows(catalog, table)) == len(read_rows(out, table))
        assert table_of(catalog, table).location() == str((out / table).resolve())


def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_synth_is_deterministic_across_processes(tmp_path: Path) -> None:
    # GIVEN the synth command run in a process of its own
    cli_out, here = tmp_path / "cli", tmp_path / "here"
    result = archiver_cli(["synth", str(cli_out), "--jobs", "50", "--seed", "3"], cli_env(None))
    assert result.returncode == 0, result.stderr
    # WHEN the same corpus is written again, in this process
    summary = write_corpus(here, jobs=50, seed=3)
    # THEN both runs wrote the same files, byte for byte, and the command said how many
    files = _tree(cli_out)
    assert len(files) == summary.objects
    assert files == _tree(here)
    assert result.stdout == f"wrote {summary.objects} objects ({summary.total_bytes} bytes) to {cli_out}\n"


DEMO_JOBS = 30
# `archiver demo` synthesises a fixed 2,000 jobs (about 30 s through moto). The test runs the very
# same entry point, `archiver.cli.main.main(["demo"])`, with archiver.local.demo.DEMO_JOBS made smaller.
DEMO_LAUNCHER = (
    "import sys, archiver.local.demo, archiver.cli.main; "
    "archiver.local.demo.DEMO_JOBS = int(sys.argv[1]); "
    "raise SystemExit(archiver.cli.main.main(sys.argv[2:]))"
)


def test_demo_tours_the_archive_it_writes_in_the_working_folder(tmp_path: Path) -> None:
    # GIVEN an empty working folder
    # WHEN a user runs `archiver demo` there
    result = subprocess.run(
        [sys.executable, "-c", DEMO_LAUNCHER, str(DEMO_JOBS), "demo"],
        env=cli_env(None),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    # THEN it exits 0, leaves ./archive, and prints rows per table that the archive really holds
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    archive_dir = tmp_path / "archive"
    assert {path.name for path in archive_dir.iterdir()} == {*TABLES, "_archiver"}
    printed: dict[str, int] = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] in TABLES and words[2] == "rows":
            printed[words[0]] = int(words[1])
    assert printed == {table: len(read_rows(archive_dir, table)) for table in TABLES}
    assert printed["jobs"] == DEMO_JOBS
    # AND the query it prints runs as printed, from the working folder
    query = next(line.strip() for line in result.stdout.splitlines() if line.strip().startswith("SELECT"))
    assert "iceberg_scan" in query
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        with duckdb_with_iceberg() as connection:
            counts = connection.sql(query.rstrip(";")).fetchall()
    finally:
        os.chdir(previous)
    assert sum(count for _, count in counts) == DEMO_JOBS
