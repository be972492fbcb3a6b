"""The backfill path end to end, following the state machine in infra/template.yaml.

moto 5.2.5 can execute state machines, but not this one: its ItemReader supports CSV
and JSON manifests only (no JSONL), and it runs Lambda tasks only in Docker. So the
test walks the definition itself: the Plan task's payload from the template goes to
`task_handler`, the manifest named by the Map's ItemReader paths is read from S3, every
line goes through the template's ItemSelector to `task_handler` in its own process (all
at once, as child executions would), and the Verify payload ends it. The archive must
equal one plain compact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archiver.aws.handlers import task_handler
from archiver.aws.tasks import ArchiveGapError
from tests.functional.aws.archive import assert_same_archive, download_tree, s3_client
from tests.functional.aws.conftest import DEST_PREFIX, Deployed
from tests.functional.aws.lambda_context import LambdaContext
from tests.unit.aws.template import all_states, definition, path, resolve

REPO = Path(__file__).resolve().parents[3]


def run_in_processes(tmp_path: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    workers = []
    for index, event in enumerate(events):
        event_path = tmp_path / f"item-{index}.json"
        event_path.write_text(json.dumps(event))
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.functional.aws.invoke", "task_handler", str(event_path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
        )
    answers = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-2000:]
        line = next(line for line in out.splitlines() if line.startswith("ANSWER "))
        answers.append(json.loads(line[len("ANSWER ") :]))
    return answers


def test_plan_then_every_unit_in_parallel_then_verify_equals_one_compact(
    deployed: Deployed, clean_archive: Path, tmp_path: Path
) -> None:
    states = all_states(definition()["States"])
    # GIVEN the execution input of a full backfill, after the Window state
    state: dict[str, Any] = {"window": {"since": None, "until": None}}
    # WHEN the Plan task runs with the template's payload and its ResultSelector
    plan_out = task_handler(resolve(states["Plan"]["Parameters"], state)["Payload"], LambdaContext())
    state["plan"] = resolve(states["Plan"]["ResultSelector"], {"Payload": plan_out})
    # ... the Map reads the manifest its ItemReader names
    reader = resolve(states["ArchiveUnits"]["ItemReader"]["Parameters"], state)
    client: Any = s3_client(deployed.endpoint)
    manifest = client.get_object(Bucket=reader["Bucket"], Key=reader["Key"])["Body"].read().decode()
    lines = [json.loads(line) for line in manifest.splitlines()]
    # ... and every item goes through the ItemSelector to its own process, all at once
    items = [
        resolve(states["ArchiveUnits"]["ItemSelector"], state, {"Map": {"Item": {"Value": line}}})
        for line in lines
    ]
    summaries = run_in_processes(tmp_path, items)
    # ... then Verify
    verified = task_handler(resolve(states["Verify"]["Parameters"], state)["Payload"], LambdaContext())
    # THEN the manifest is under the archive's _archiver/plans/, one {"unit"} per line
    assert reader["Bucket"] == deployed.dest_bucket
    assert reader["Key"].startswith(DEST_PREFIX + "_archiver/plans/") and reader["Key"].endswith(".jsonl")
    assert plan_out["units"] == len(lines) > 3 and all(set(line) == {"unit"} for line in lines)
    assert any(line["unit"].startswith("loose=") for line in lines)
    # ... every unit's summary is small and clean, verify is ok, and the archive is one compact's
    assert all(len(json.dumps(summary)) < 4096 and summary["objects_failed"] == 0 for summary in summaries)
    assert sum(summary["objects_listed"] for summary in summaries) == len(deployed.keys)
    assert verified["ok"] is True and verified["objects_checked"] > 0
    assert_same_archive(
        download_tree(deployed.endpoint, deployed.dest_bucket, DEST_PREFIX, tmp_path / "got"), clean_archive
    )
    assert path(state, "$.plan.units") == len(lines)


def test_verify_raises_on_a_gap_so_the_execution_fails(deployed: Deployed) -> None:
    # GIVEN an archive of all but one day
    planned = task_handler({"action": "plan"}, LambdaContext())
    client: Any = s3_client(deployed.endpoint)
    body = client.get_object(Bucket=deployed.dest_bucket, Key=planned["manifest"]["key"])["Body"].read()
    units = [json.loads(line)["unit"] for line in body.decode().splitlines()]
    for unit in units[1:]:
        task_handler({"action": "compact", "unit": unit}, LambdaContext())
    # WHEN verify runs over the whole source
    with pytest.raises(ArchiveGapError, match="not archived") as raised:
        task_handler({"action": "verify", "since": None, "until": None}, LambdaContext())
    # THEN the error names the gap; a verify of only the archived days passes
    assert "first:" in str(raised.value)
    archived_days = sorted(unit[4:] for unit in units[1:] if unit.startswith("day="))
    window = {"action": "verify", "since": archived_days[0], "until": archived_days[-1]}
    assert units[0] < f"day={archived_days[0]}"
    assert task_handler(window, LambdaContext())["ok"] is True
