"""`archiver pull-activity` as a user runs it (in-process `main()`), against the loopback fake API.

Until the engine's activity ledger lands, `open_sink` raises; these tests put an
in-memory sink behind it, except the end-to-end one, which is expected to fail
until then.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from archiver.cli.main import main
from archiver.config import Settings
from archiver.sources import activity_pull
from archiver.storage.store import ObjectStore
from tests.functional.readback import read_rows
from tests.functional.sources.conftest import TOKEN, MemorySink
from tests.functional.sources.fake_workato import FakeWorkato, make_events, running_fake

REPORT_KEYS = {
    "events_pulled",
    "events_new",
    "pages",
    "requests",
    "retries",
    "seconds",
    "unknown_event_types",
    "window",
    "managed_users",
}


@pytest.fixture
def fake() -> Iterator[FakeWorkato]:
    now = dt.datetime.now(dt.UTC)
    events = make_events(150, start=now - dt.timedelta(hours=30), span=dt.timedelta(hours=24))
    with running_fake(FakeWorkato(token=TOKEN, events=events)) as running:
        yield running


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKATO_API_TOKEN", TOKEN)
    monkeypatch.setenv("ARCHIVER_API_REQUESTS_PER_MINUTE", "6000")
    monkeypatch.setenv("ARCHIVER_API_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("ARCHIVER_NO_PROGRESS", "1")


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> MemorySink:
    memory = MemorySink()

    async def open_memory_sink(dest: ObjectStore, settings: Settings) -> MemorySink:
        return memory

    monkeypatch.setattr(activity_pull, "open_sink", open_memory_sink)
    return memory


def since() -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).date().isoformat()


def test_json_prints_one_report_and_lands_every_event(
    fake: FakeWorkato, env: None, sink: MemorySink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the fake API with 150 events of the last day and a half
    # WHEN pull-activity runs with --json
    code = main(
        ["pull-activity", str(tmp_path / "dest"), "--base-url", fake.url, "--since", since(), "--json"]
    )
    # THEN it exits 0, prints exactly one JSON object, and every event reached the sink
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert set(report) >= REPORT_KEYS
    assert report["events_pulled"] == report["events_new"] == 150
    assert len(sink.rows) == 150
    assert (tmp_path / "dest" / "_archiver" / "activity-api" / "checkpoint.json").is_file()


def test_a_rejected_token_exits_3_with_one_line_saying_what_to_check(
    fake: FakeWorkato,
    env: None,
    sink: MemorySink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a token the API refuses
    monkeypatch.setenv("WORKATO_API_TOKEN", "expired-token-0000")
    # WHEN pull-activity runs
    code = main(["pull-activity", str(tmp_path / "dest"), "--base-url", fake.url, "--json"])
    # THEN exit 3, nothing on stdout, one line on stderr naming the token, the privilege, the base URL
    out = capsys.readouterr()
    assert code == 3
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1
    assert "WORKATO_API_TOKEN" in out.err and "privilege" in out.err and "--base-url" in out.err
    assert "expired-token-0000" not in out.err and "Traceback" not in out.err


def test_an_unreachable_base_url_exits_3(
    env: None, sink: MemorySink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a base URL where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # WHEN pull-activity runs
    code = main(["pull-activity", str(tmp_path / "dest"), "--base-url", f"http://127.0.0.1:{port}"])
    # THEN exit 3 with one line that says to check the base URL
    err = capsys.readouterr().err
    assert code == 3 and len(err.strip().splitlines()) == 1 and "--base-url" in err


@pytest.mark.parametrize(
    ("argv", "unset_token", "message"),
    [
        (["--base-url", "www.workato.com"], False, "--base-url must look like"),
        (["--base-url", "https://www.workato.com"], True, "WORKATO_API_TOKEN is not set"),
        (["--base-url", "https://www.workato.com", "--managed-user", "a/b"], False, "--managed-user"),
        (
            ["--base-url", "https://www.workato.com", "--since", "2025-02-01", "--until", "2025-01-01"],
            False,
            "after",
        ),
        ([], False, "--base-url"),
    ],
    ids=["base-url-without-scheme", "no-token", "bad-managed-user", "since-after-until", "no-base-url"],
)
def test_bad_arguments_exit_2(
    env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    unset_token: bool,
    message: str,
) -> None:
    # GIVEN a wrong invocation
    if unset_token:
        monkeypatch.delenv("WORKATO_API_TOKEN")
    # WHEN pull-activity runs
    code = main(["pull-activity", str(tmp_path / "dest"), *argv])
    # THEN exit 2 with a one-line reason, and no token anywhere
    err = capsys.readouterr().err
    assert code == 2 and message in err and TOKEN not in err


def test_pull_activity_archives_into_the_activity_table(
    fake: FakeWorkato, env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the fake API and the real archive sink
    dest = tmp_path / "dest"
    # WHEN pull-activity runs twice
    first = main(["pull-activity", str(dest), "--base-url", fake.url, "--since", since(), "--json"])
    second = main(["pull-activity", str(dest), "--base-url", fake.url, "--json"])
    # THEN both exit 0, the first adds every event to the activity table and the second none
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first == second == 0
    assert [report["events_new"] for report in reports] == [150, 0]
    # AND the activity table holds each event once, with Workato's id and the API as its source
    rows = read_rows(dest, "activity")
    assert len(rows) == 150
    assert len({row["event_id"] for row in rows}) == 150
    assert all(
        row["source_key"] == "api:/api/activity_logs" and row["stream_type"] == "activity_api" for row in rows
    )
