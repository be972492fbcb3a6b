"""The redaction policy from the command line: ARCHIVER_POLICY (a file or an s3:// key) and its key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pytest

from archiver.formats.policy import read_policy
from archiver.local.moto_server import MOTO_CREDENTIALS, upload_tree
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
from tests.functional.engine.buckets import new_bucket

POLICY = '[columns.jobs]\nuser_email = "hash"\n[payload.keys]\nemail = "mask"\n'
KEY = "cli policy key"
WRONG = {
    "bad-toml": ("[columns.jobs\n", {}, "not valid TOML"),
    "unknown-column": ('[columns.jobs]\nuser_emial = "hash"\n', {"ARCHIVER_POLICY_KEY": KEY}, "no column"),
    "no-key": (POLICY, {}, "no key is set (ARCHIVER_POLICY_KEY)"),
    "missing-file": (None, {}, "No such file"),
}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> str:
    root = tmp_path_factory.mktemp("policy-cli-corpus")
    write_corpus(root, jobs=20, seed=4, start=dt.date(2024, 8, 30), days=3)
    bucket = new_bucket(moto_endpoint, "policy-cli")
    upload_tree(moto_endpoint, bucket, root)
    return bucket


@pytest.fixture(scope="module")
def wrong(
    source: str, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, object]]:
    """Each wrong policy given to `compact`, run side by side: (the empty dest bucket, the outcome)."""
    folder = tmp_path_factory.mktemp("policies")
    invocations, dests = {}, {}
    for name, (text, extra, _) in WRONG.items():
        path = folder / f"{name}.toml"
        if text is not None:
            path.write_text(text)
        dests[name] = new_bucket(moto_endpoint, "policy-cli-dst")
        env = cli_env(moto_endpoint, ARCHIVER_POLICY=str(path), **extra)
        invocations[name] = Invocation(["compact", f"s3://{source}/", f"s3://{dests[name]}/", "--json"], env)
    outcomes = run_side_by_side(invocations)
    return {name: (dests[name], outcomes[name]) for name in WRONG}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_policy_error_is_one_line_exit_2_and_nothing_is_written(
    case: str, wrong: dict[str, tuple[str, object]], moto_endpoint: str
) -> None:
    # GIVEN a policy file that is not valid, names a column that does not exist, hashes without a key,
    # or is not there; WHEN compact runs with it
    dest, outcome = wrong[case]
    result = finished(outcome)  # type: ignore[arg-type]
    # THEN exit 2 with one line naming ARCHIVER_POLICY and the mistake, and the archive is untouched
    line = one_error_line(result, 2)
    assert "ARCHIVER_POLICY" in line and WRONG[case][2] in line
    assert s3_objects(moto_endpoint, dest) == {}


def test_a_policy_kept_in_s3_is_loaded_and_named_in_the_report(source: str, moto_endpoint: str) -> None:
    # GIVEN a policy stored as an S3 object, and its key in the environment
    config = new_bucket(moto_endpoint, "policy-cli-cfg")
    client = boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=moto_endpoint)
    client.put_object(Bucket=config, Key="archiver/policy.toml", Body=POLICY.encode())
    client.close()
    dest = new_bucket(moto_endpoint, "policy-cli-dst")
    env = cli_env(
        moto_endpoint, ARCHIVER_POLICY=f"s3://{config}/archiver/policy.toml", ARCHIVER_POLICY_KEY=KEY
    )
    # WHEN compact runs
    result = finished(
        run_side_by_side({"run": Invocation(["compact", f"s3://{source}/", f"s3://{dest}/", "--json"], env)})[
            "run"
        ]
    )
    # THEN it finishes and its report names the digest of exactly that policy under that key
    assert result.returncode == 0, result.stderr
    assert single_report(result)["policy"] == read_policy(POLICY, key=KEY.encode()).digest


def test_redact_rewrites_a_local_archive_under_a_new_policy_once(tmp_path: Path) -> None:
    # GIVEN a local archive written with no policy file, and then a policy with its key
    corpus, archive = tmp_path / "corpus", tmp_path / "archive"
    write_corpus(corpus, jobs=15, seed=9, start=dt.date(2024, 8, 30), days=2)
    assert archiver_cli(["compact", str(corpus), str(archive)], cli_env(None)).returncode == 0
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    env = cli_env(None, ARCHIVER_POLICY=str(policy), ARCHIVER_POLICY_KEY=KEY)
    # WHEN redact runs twice
    first = single_report(archiver_cli(["redact", str(archive), "--json"], env))
    second = single_report(archiver_cli(["redact", str(archive), "--json"], env))
    # THEN the first rewrites the files under the new policy, the second has nothing left to do
    digest = read_policy(POLICY, key=KEY.encode()).digest
    assert first["policy"] == second["policy"] == digest
    assert isinstance(first["files_rewritten"], int) and first["files_rewritten"] > 0
    assert second["files_rewritten"] == 0 and second["failures"] == []
