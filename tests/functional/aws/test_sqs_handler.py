"""`sqs_handler` against a moto server: real-shaped batches in, the archive read back and compared.

The reference is always one plain `compact` of the same source bucket; the jobs table is
also judged against the synthetic corpus's own truth.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from archiver.aws.handlers import sqs_handler
from archiver.aws.runtime import close_runtime, current_runtime
from archiver.aws.sqs_batch import handle_batch
from tests.functional.aws.archive import assert_same_archive, download_tree, read_rows, s3_client
from tests.functional.aws.batches import batch, described_objects, failed_ids, record_for, redelivered
from tests.functional.aws.conftest import DEST_PREFIX, SOURCE_PREFIX, Deployed
from tests.functional.aws.lambda_context import LambdaContext
from tests.functional.faults import INTERNAL, SLOWDOWN, FaultProxy, Request
from tests.functional.oracle import assert_final_jobs
from tests.unit.aws.events import load_event

REPO = Path(__file__).resolve().parents[3]
BATCH = 25


def in_batches(keys: list[str], size: int = BATCH) -> list[list[str]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


def archive_of(deployed: Deployed, folder: Path) -> Path:
    return download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, folder)


def invoke_in_process(event: dict[str, Any]) -> dict[str, Any]:
    return sqs_handler(event, LambdaContext())


def start_invocation(tmp_path: Path, name: str, event: dict[str, Any]) -> subprocess.Popen[str]:
    """`sqs_handler` in its own process (its own execution environment), configured by this environment."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(event))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.functional.aws.invoke", "sqs_handler", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def answer_of(worker: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0, err[-2000:]
    line = next(line for line in out.splitlines() if line.startswith("ANSWER "))
    answer: dict[str, Any] = json.loads(line[len("ANSWER ") :])
    return answer


def test_every_notified_object_is_archived_as_one_compact_would(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN every corpus object announced once, in batches mixing S3, SNS and EventBridge shapes,
    # and among them a test event, delete events and bodies of no known shape
    batches = [batch(deployed.source_bucket, SOURCE_PREFIX, keys) for keys in in_batches(list(deployed.keys))]
    noise = [
        *load_event("sqs_s3_test_event.json")["Records"],
        *load_event("sqs_delete_events.json")["Records"],
        *load_event("sqs_garbage_body.json")["Records"],
    ]
    batches[0]["Records"].extend(noise)
    garbage = {record["messageId"] for record in load_event("sqs_garbage_body.json")["Records"][:2]}
    # WHEN the handler gets each batch
    answers = [invoke_in_process(event) for event in batches]
    # THEN only the unknown bodies are failures, and the archive is what one compact makes
    assert failed_ids(answers[0]) == garbage
    assert all(failed_ids(answer) == set() for answer in answers[1:])
    got = archive_of(deployed, tmp_path / "got")
    assert_same_archive(got, clean_archive)
    assert_final_jobs(read_rows(got, "jobs"), deployed.corpus.expected)


def test_duplicates_gone_objects_and_foreign_keys_are_acknowledged(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN a batch announcing every object twice, one object that no longer exists,
    # one key outside the source prefix and one in another bucket
    keys = list(deployed.keys)
    event = batch(deployed.source_bucket, SOURCE_PREFIX, keys + keys[::-1])
    gone = record_for("s3", deployed.source_bucket, SOURCE_PREFIX + keys[0].rsplit("/", 1)[0] + "/gone.json")
    outside = record_for("eventbridge", deployed.source_bucket, "elsewhere/" + keys[0])
    foreign = record_for("sns", "another-bucket", SOURCE_PREFIX + keys[0])
    event["Records"] += [gone, outside, foreign]
    # WHEN the handler gets it, and then the same batch again (a redelivery)
    first = invoke_in_process(event)
    second = invoke_in_process(event)
    # THEN nothing failed, and the archive is what one compact makes
    assert failed_ids(first) == failed_ids(second) == set()
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)


def test_a_batch_costs_one_source_get_per_object_and_no_head(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN every object announced with the size and ETag S3 puts in its creation event
    client: Any = s3_client(deployed.endpoint)
    described = described_objects(client, deployed.source_bucket, SOURCE_PREFIX)
    event = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys), described=described)
    json_keys = [key for key in deployed.keys if key.endswith(".json")]
    # WHEN the batch is handled, and then delivered again
    first = handle_batch(event, LambdaContext(), current_runtime())
    again = handle_batch(event, LambdaContext(), current_runtime())
    # THEN the source saw one GET per JSON object and no HEAD; the redelivery reads nothing of it
    assert first.outcome is not None and first.outcome.report is not None
    assert again.outcome is not None and again.outcome.report is not None
    source = first.outcome.report.by_store["source"]
    assert (source["head"], source["get"], source["list"]) == (0, len(json_keys), 0)
    repeat = again.outcome.report.by_store["source"]
    assert (repeat["head"], repeat["get"], repeat["list"]) == (0, 0, 0)
    # AND the archive's erasures came from the erasure index and its units from their heads: no LIST
    # of the archive once the index exists (the first batch of an archive writes it)
    assert again.outcome.report.by_store["dest"]["list"] == 0
    assert failed_ids(dict(first.response)) == failed_ids(dict(again.response)) == set()
    # AND the archive is what one compact makes
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)


def test_two_invocations_on_overlapping_batches_at_once(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN two batches that share a third of the objects (every unit is in both)
    keys = list(deployed.keys)
    third = len(keys) // 3
    first = batch(deployed.source_bucket, SOURCE_PREFIX, keys[: 2 * third], shapes=("s3",))
    second = batch(deployed.source_bucket, SOURCE_PREFIX, keys[third:], shapes=("eventbridge",))
    # WHEN two execution environments handle them at the same moment
    workers = [start_invocation(tmp_path, "a", first), start_invocation(tmp_path, "b", second)]
    answers = [answer_of(worker) for worker in workers]
    # THEN both succeed and the archive equals one clean compact (the ledger's commit arbitrates)
    assert [failed_ids(answer) for answer in answers] == [set(), set()]
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)


def test_a_handler_killed_mid_batch_then_the_batch_redelivered(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    # GIVEN a batch of every object, handled in its own process
    event = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys))
    worker = start_invocation(tmp_path, "doomed", event)
    client: Any = s3_client(deployed.endpoint)
    # WHEN the process is killed as soon as it has started writing the archive
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        listed = client.list_objects_v2(Bucket=deployed.dest_bucket, Prefix=DEST_PREFIX)
        if any(item["Key"].endswith(".parquet") for item in listed.get("Contents", [])):
            break
        time.sleep(0.02)
    killed = worker.poll() is None
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    # ... and SQS redelivers the batch after the visibility timeout
    answer = invoke_in_process(redelivered(event))
    # THEN the redelivery succeeds and the archive is exactly one clean compact: no orphan, no duplicate
    assert killed, "the handler finished before it could be killed"
    assert failed_ids(answer) == set()
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)


def test_injected_s3_faults_are_retried(
    deployed: Deployed, clean_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN S3 behind a proxy answering 15% of requests with 503 SlowDown or 500 InternalError
    with FaultProxy(deployed.endpoint, rate=0.15, seed=3, faults=(SLOWDOWN, INTERNAL)) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        # WHEN the handler archives every object
        answers = [
            invoke_in_process(batch(deployed.source_bucket, SOURCE_PREFIX, keys))
            for keys in in_batches(list(deployed.keys), 60)
        ]
    # THEN the retries absorb the faults: no failed message, and the same archive as one compact
    assert proxy.log.faults, "no fault was injected"
    assert all(failed_ids(answer) == set() for answer in answers)
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)


def test_an_object_that_stays_unreadable_fails_only_its_message(
    deployed: Deployed, clean_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN one job object whose every GET answers 500, whatever the retries
    keys = [key for key in deployed.keys if "/jobs/" in key][:6]
    victim = keys[2]

    def rule(request: Request) -> str | None:
        return INTERNAL if request.is_object_read and request.path.endswith(victim) else "pass"

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    event = batch(deployed.source_bucket, SOURCE_PREFIX, keys)
    with FaultProxy(deployed.endpoint, rate=0.0, rule=rule) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        # WHEN the handler gets the batch
        answer = invoke_in_process(event)
    # THEN exactly the victim's message is returned for redelivery
    victim_message = event["Records"][2]["messageId"]
    assert failed_ids(answer) == {victim_message}
    # AND once S3 recovers (a new execution environment, straight to S3), the redelivery is archived
    close_runtime()
    monkeypatch.setenv("AWS_ENDPOINT_URL", deployed.endpoint)
    retry = {"Records": [record for record in event["Records"] if record["messageId"] == victim_message]}
    assert failed_ids(invoke_in_process(retry)) == set()
    everything = batch(deployed.source_bucket, SOURCE_PREFIX, list(deployed.keys))
    assert failed_ids(invoke_in_process(everything)) == set()
    assert_same_archive(archive_of(deployed, tmp_path / "got"), clean_archive)
