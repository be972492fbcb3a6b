"""The engine's child processes: a fresh interpreter over one pipe, and how a start can fail."""

from __future__ import annotations

import asyncio
import sys

import pytest

from archiver.engine.children import receive, start_child
from archiver.engine.parsing import parse_forever
from archiver.errors import WorkerProcessDiedError, WorkerStartError
from archiver.formats.layout import parse_key
from archiver.formats.policy import DEFAULT_POLICY
from tests.unit.engine.jobs import job_body, job_key


def test_a_child_runs_its_target_and_answers_over_its_pipe() -> None:
    async def scenario() -> None:
        # GIVEN a parse worker started as a child
        child = start_child(parse_forever, what="a parse worker")
        try:
            await child.ready()
            # WHEN it is sent a batch of one job object
            key = job_key("4242")
            child.pipe.send(([(job_body("4242"), key, '"e"', parse_key(key))], DEFAULT_POLICY))
            kind, parsed = await asyncio.wait_for(receive(child.pipe), 60)
        finally:
            child.close()
        # THEN it answers with the parsed object, and exits once its pipe is closed
        assert kind == "parsed" and parsed[0].jobs[0].job_id == "4242"
        assert child.exitcode == 0

    asyncio.run(scenario())


def test_an_interpreter_that_does_not_exist_is_a_start_error_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an embedding program whose sys.executable is not there
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    # WHEN a worker is started
    with pytest.raises(WorkerStartError) as raised:
        start_child(parse_forever, what="2 parse workers")
    # THEN one line names what failed, why, and the setting that avoids worker processes
    message = str(raised.value)
    assert "\n" not in message and message.startswith("could not start 2 parse workers: ")
    assert "No such file or directory" in message and "ARCHIVER_PARSE_WORKERS=1" in message


def test_a_child_killed_while_starting_died_rather_than_failed_to_start() -> None:
    async def scenario() -> None:
        # GIVEN a child killed outright (out of memory, SIGKILL) before it was ready
        child = start_child(parse_forever, what="2 parse workers")
        child.kill()
        # WHEN its start is awaited
        with pytest.raises(WorkerProcessDiedError, match="killed by signal 9"):
            await child.ready()
        child.close()

    asyncio.run(scenario())


def test_a_target_must_be_a_module_level_function() -> None:
    def nested(pipe: object) -> None:
        raise AssertionError("never runs")

    with pytest.raises(ValueError, match="module-level"):
        start_child(nested, what="a worker")
