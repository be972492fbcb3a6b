"""The synthetic corpus is deterministic, covers every documented shape, and its truths hold."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from archiver.formats.layout import is_json_key, parse_key
from archiver.local import synth
from archiver.local.synth import SynthObject, Truth
from archiver.local.synth.echoes import SECRET_TAG

SRC = Path(__file__).resolve().parents[3] / "src"


@pytest.fixture(scope="module")
def corpus() -> list[SynthObject]:
    return list(synth.generate(2000, seed=1))


@pytest.fixture(scope="module")
def small() -> list[SynthObject]:
    return list(synth.generate(40, seed=7))


def _digest(objects: Iterable[SynthObject]) -> str:
    digest = hashlib.sha256()
    for obj in objects:
        digest.update(obj.key.encode())
        digest.update(b"\0")
        digest.update(obj.body)
        digest.update(repr(obj.truth).encode())
    return digest.hexdigest()


def _job(obj: SynthObject) -> dict[str, Any]:
    """The job object inside a job file, found from the envelope the truth names."""
    value = orjson.loads(obj.body)
    envelope = obj.truth.envelope
    if envelope == "json_string":
        return dict(orjson.loads(value))
    if envelope == "summary":
        return dict(value["log_message"])
    if envelope == "status":
        return dict(value["log"])
    if envelope == "details":
        return dict(value["Log"])
    if envelope == "log_entries":
        return dict(value["logEntries"][0])
    if envelope == "workato_event":
        return dict(value["workato"]["event"])
    return dict(value)


def _jobs(objects: Iterable[SynthObject]) -> list[SynthObject]:
    return [obj for obj in objects if obj.truth.kind == synth.KIND_JOB]


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes() -> None:
    # GIVEN two generators with the same arguments, and one with another seed
    first = _digest(synth.generate(300, seed=5))
    second = _digest(synth.generate(300, seed=5))
    other = _digest(synth.generate(300, seed=6))

    # THEN the same seed reproduces the corpus exactly, another seed does not
    assert first == second
    assert first != other


def test_corpus_does_not_depend_on_the_process_hash_seed() -> None:
    # GIVEN a child process with a different string-hash seed
    code = (
        "import hashlib, sys; from archiver.local import synth; h = hashlib.sha256()\n"
        "for o in synth.generate(120, seed=9):\n"
        "    h.update(o.key.encode() + b'\\0' + o.body)\n"
        "sys.stdout.write(h.hexdigest())"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": "12345"}

    # WHEN it generates the same corpus
    child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)

    # THEN the bytes match this process's
    mine = hashlib.sha256()
    for obj in synth.generate(120, seed=9):
        mine.update(obj.key.encode() + b"\0" + obj.body)
    assert child.stdout == mine.hexdigest()


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("name", ["small", "corpus"])
def test_every_shape_is_present(name: str, request: pytest.FixtureRequest) -> None:
    objects: list[SynthObject] = request.getfixturevalue(name)
    truths = [obj.truth for obj in objects]
    jobs = [t for t in truths if t.kind == synth.KIND_JOB]

    assert {t.stream_type for t in jobs} == {
        synth.JOB_HISTORY,
        synth.JOB_SUMMARY,
        synth.JOB_STATUS,
        synth.JOB_DETAILS,
    }
    assert {t.envelope for t in jobs} == set(synth.ENVELOPE_STREAM)
    assert {t.layout for t in jobs} == {"standard", "embedded"}
    assert {t.format for t in jobs if t.envelope == "details"} == {"old", "new"}
    assert {t.stream_type for t in truths if t.kind == synth.KIND_ACTIVITY} == {
        synth.USER_ACTIVITY,
        synth.ACTIVITY_EVENT,
        synth.PROJECT_DEPLOYMENT,
        synth.ACTIVITY_API,
    }
    assert {t.reason for t in truths if t.kind == synth.KIND_QUARANTINE} == set(synth.QUARANTINE_REASONS)
    assert any(t.kind == synth.KIND_SKIP for t in truths)
    assert any(t.lines_truncated for t in jobs)
    assert any(t.masked_lines for t in jobs)
    assert {t.status for t in jobs if t.is_final} == {"succeeded", "failed"}
    assert {t.status for t in jobs if not t.is_final} >= {"pending", "running"}


def test_proportions_are_roughly_as_documented(corpus: list[SynthObject]) -> None:
    finals = [obj.truth for obj in corpus if obj.truth.kind == synth.KIND_JOB and obj.truth.is_final]
    versions: dict[str, int] = defaultdict(int)
    for obj in _jobs(corpus):
        versions[obj.truth.job_id or ""] += 1

    assert len(finals) == 2000
    assert 0.05 < sum(1 for n in versions.values() if n > 1) / len(versions) < 0.16
    assert 0.06 < sum(1 for t in finals if t.status == "failed") / len(finals) < 0.15
    assert 0.004 < sum(1 for obj in corpus if obj.truth.kind == synth.KIND_QUARANTINE) / len(corpus) < 0.02
    assert 2 <= len({t.user_id for t in finals}) <= 5
    assert min(t.day for t in finals if t.day) < synth.FORMAT_CHANGE <= max(t.day for t in finals if t.day)


# --------------------------------------------------------------------------- keys


def test_job_keys_parse_and_agree_with_their_truth(corpus: list[SynthObject]) -> None:
    stamp_lengths = set()
    for obj in _jobs(corpus):
        info = parse_key(obj.key)
        truth = obj.truth
        assert info is not None, obj.key
        assert (info.user_id, info.recipe_id, info.day, info.job_id, info.status, info.layout) == (
            truth.user_id,
            truth.recipe_id,
            truth.day,
            truth.job_id,
            truth.status,
            truth.layout,
        )
        stamp_lengths.add(len(obj.key.rsplit("/", 1)[1].split("-")[-2]))
        if truth.layout == "standard":
            assert "-" in (truth.job_id or "")
            assert obj.key.split("/")[4] == truth.job_id
        else:
            assert len(obj.key.split("/")) == 12
            assert (truth.job_id or "").isdigit()
    assert stamp_lengths == {8, 14}


def test_activity_and_junk_keys_are_outside_the_job_layout(corpus: list[SynthObject]) -> None:
    keys = [obj.key for obj in corpus]
    assert len(keys) == len(set(keys))
    for obj in corpus:
        if obj.truth.kind == synth.KIND_ACTIVITY:
            assert parse_key(obj.key) is None and is_json_key(obj.key)
        elif obj.truth.kind == synth.KIND_SKIP:
            assert not is_json_key(obj.key)
    assert {"_SUCCESS", "README.txt"} <= set(keys)
    assert any(key.endswith(".json.tmp") and "/jobs/" in key for key in keys)


# --------------------------------------------------------------------------- versions


def test_each_job_has_exactly_one_final_version_and_the_rule_picks_it(corpus: list[SynthObject]) -> None:
    groups: dict[str, list[SynthObject]] = defaultdict(list)
    for obj in _jobs(corpus):
        groups[obj.truth.job_id or ""].append(obj)

    def rank(obj: SynthObject) -> tuple[bool, int, int]:
        # The archiver's rule: terminal status, then later completed_at, then later object.
        info = parse_key(obj.key)
        assert info is not None and info.stamp_us is not None
        terminal = obj.truth.status in synth.TERMINAL_STATUSES
        return terminal, obj.truth.completed_us or -1, info.stamp_us

    scenarios = set()
    for versions in groups.values():
        finals = [obj for obj in versions if obj.truth.is_final]
        assert len(finals) == 1
        assert len({obj.key.rsplit("/", 1)[0] for obj in versions}) == 1  # one job folder
        if len(versions) > 1:
            ranks = sorted(rank(obj) for obj in versions)
            assert ranks[-1] == rank(finals[0]) and ranks[-2] != ranks[-1]
            stamps = [rank(obj)[2] for obj in versions]
            terminal = [obj for obj in versions if obj.truth.status in synth.TERMINAL_STATUSES]
            if len(terminal) > 1 and rank(finals[0])[2] < max(stamps):
                scenarios.add("completed_at beats a later object")
            elif len(terminal) > 1 and terminal[0].truth.completed_us == terminal[1].truth.completed_us:
                scenarios.add("later object breaks a tie")
            elif len(terminal) == 1 and rank(finals[0])[2] < max(stamps):
                scenarios.add("terminal beats a later non-terminal")
    assert scenarios == {
        "completed_at beats a later object",
        "later object breaks a tie",
        "terminal beats a later non-terminal",
    }


# --------------------------------------------------------------------------- bodies


def test_job_bodies_match_their_truth(corpus: list[SynthObject]) -> None:
    for obj in _jobs(corpus):
        truth = obj.truth
        job = _job(obj)
        assert job["status"] == truth.status
        assert str(job["id"]) == truth.job_id
        lines = job.get("lines")
        if truth.line_count is None:
            assert lines is None
        elif truth.lines_truncated:
            assert lines == synth.LINES_DROPPED and truth.line_count == 0
            assert job["context"]["recipe_name"]
        else:
            assert isinstance(lines, list) and len(lines) == truth.line_count
            assert sum(1 for line in lines if line["mask_data"]) == truth.masked_lines
            assert sum(1 for line in lines if "line_stat" in line) == truth.timed_lines


def test_old_and_new_job_details_formats(corpus: list[SynthObject]) -> None:
    details = [obj for obj in _jobs(corpus) if obj.truth.envelope == "details"]
    for obj in details:
        envelope = orjson.loads(obj.body)
        assert {"source", "Env", "Time", "Time_utc", "Time_micro", "Time_nano", "Log", "Log_Str"} <= set(
            envelope
        )
        job, context = envelope["Log"], envelope["Log"]["context"]
        lines = job["lines"] if isinstance(job["lines"], list) else []
        assert obj.truth.day is not None
        if obj.truth.format == "old":
            assert obj.truth.day < synth.FORMAT_CHANGE
            assert "parent_id" in job
            assert set(synth.NEW_FORMAT_DROPPED_CONTEXT) <= set(context)
            assert all("line_stat" in line for line in lines)
        else:
            assert obj.truth.day >= synth.FORMAT_CHANGE
            assert "parent_id" not in job
            assert not set(synth.NEW_FORMAT_DROPPED_CONTEXT) & set(context)
            assert not any("line_stat" in line for line in lines)
    log_strings = []
    for obj in details:
        try:
            log_strings.append(orjson.loads(orjson.loads(obj.body)["Log_Str"]) == _job(obj))
        except orjson.JSONDecodeError:
            log_strings.append(None)
    assert {True, False, None} <= set(log_strings)  # faithful, stale and unparseable copies


def test_failed_jobs_carry_an_error(corpus: list[SynthObject]) -> None:
    plain = structured = 0
    for obj in _jobs(corpus):
        if obj.truth.status != "failed":
            continue
        job = _job(obj)
        assert job["error_type"] == obj.truth.error_type
        try:
            error = orjson.loads(job["error"])
        except orjson.JSONDecodeError:
            plain += 1
        else:
            structured += 1
            assert set(error) == {
                "error_id",
                "error_type",
                "error_at",
                "adapter",
                "action",
                "line_number",
                "message",
                "inner_message",
            }
            if isinstance(job.get("lines"), list):
                assert job["lines"][-1]["error"] == error["message"]
                assert job["lines"][-1]["recipe_line_number"] == error["line_number"]
    assert plain and structured


def test_ids_timestamps_and_text_vary(corpus: list[SynthObject]) -> None:
    jobs = [_job(obj) for obj in _jobs(corpus)]
    assert {type(job["recipe_id"]) for job in jobs} == {int, str}
    assert any(str(job["flow_id"]).endswith("-flow") for job in jobs)
    started = [job["started_at"] for job in jobs]
    assert any(s.endswith("Z") for s in started)
    assert any("." not in s for s in started) and any(len(s.split(".")[-1]) > 9 for s in started if "." in s)
    assert len({s[-6:] for s in started if not s.endswith("Z")}) >= 4  # several UTC offsets
    assert any(job["report"] and "custom_column_0" in job["report"] for job in jobs)
    bodies = b"".join(obj.body for obj in corpus[:400])
    for text in ("é", "注文", "🚀"):
        assert text.encode() in bodies
    masked = [
        line
        for job in jobs
        if isinstance(job.get("lines"), list)
        for line in job["lines"]
        if line["mask_data"]
    ]
    assert masked and all(line["input"] == {"data": "masked"} for line in masked)
    large = [obj for obj in _jobs(corpus) if len(obj.body) > 100_000]
    assert large and max(len(obj.body) for obj in large) < 5_000_000


def test_activity_objects_match_their_truth(corpus: list[SynthObject]) -> None:
    for obj in corpus:
        truth = obj.truth
        if truth.kind != synth.KIND_ACTIVITY:
            continue
        value = orjson.loads(obj.body)
        assert truth.occurred_us is not None
        assert (
            truth.day
            == (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=truth.occurred_us)).date()
        )
        if truth.stream_type == synth.USER_ACTIVITY:
            assert {"source", "UserID", "log", "log_message"} <= set(value)
            assert value["log"]["event"] == truth.event
            assert orjson.loads(value["log_message"])["event"] == truth.event
        elif truth.stream_type == synth.ACTIVITY_EVENT:
            assert value["event"] == truth.event and {"timestamp", "user", "team", "resource"} <= set(value)
        elif truth.stream_type == synth.ACTIVITY_API:
            assert value["event_type"] == truth.event and {"id", "workspace"} <= set(value)
        else:
            assert value["resource_type"] == "Deployment" and truth.event is None


# --------------------------------------------------------------------------- malformed


def test_malformed_objects_really_are_malformed(corpus: list[SynthObject]) -> None:
    quarantined = [obj for obj in corpus if obj.truth.kind == synth.KIND_QUARANTINE]
    assert quarantined
    for obj in quarantined:
        reason = obj.truth.reason
        if reason == "unrecognized":
            value = orjson.loads(obj.body)
            assert not (isinstance(value, dict) and {"id", "recipe_id", "status"} <= set(value))
            continue
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(obj.body)
        if reason == "empty":
            assert obj.body == b""
        elif reason == "truncated":
            obj.body.decode()  # valid UTF-8: only the JSON is cut short
            assert obj.body.startswith(b"{") and not obj.body.rstrip().endswith(b"}")
        elif reason == "invalid_json":
            assert b"0000000" in obj.body or b"'single quoted'" in obj.body


# --------------------------------------------------------------------------- big objects


def test_big_object_is_just_under_the_40_mb_limit_with_real_lines() -> None:
    # GIVEN a tiny corpus with one big object (generated in memory, never written)
    big = [obj for obj in synth.generate(1, seed=2, big_objects=1) if len(obj.body) > 1_000_000]

    # THEN it is a ~39 MB job history object whose lines were kept
    assert len(big) == 1
    obj = big[0]
    assert 38_000_000 < len(obj.body) < 40_000_000
    job = orjson.loads(obj.body)
    assert isinstance(job["lines"], list) and len(job["lines"]) == obj.truth.line_count
    assert obj.truth.is_final and obj.truth.lines_truncated is False


# --------------------------------------------------------------------------- writing


def test_write_corpus_writes_every_object_and_counts_them(tmp_path: Path) -> None:
    # GIVEN a corpus written to a folder
    summary = synth.write_corpus(tmp_path, jobs=150, seed=4)

    # THEN every object is a file at its key, with the generated bytes
    objects = list(synth.generate(150, seed=4))
    files = sorted(
        str(p.relative_to(tmp_path)).replace(os.sep, "/") for p in tmp_path.rglob("*") if p.is_file()
    )
    assert files == sorted(obj.key for obj in objects)
    for obj in objects[::25]:
        assert (tmp_path / obj.key).read_bytes() == obj.body

    # AND the summary agrees with the truths
    expected = synth.expected_archive(objects)
    assert summary.objects == len(objects)
    assert summary.total_bytes == sum(len(obj.body) for obj in objects)
    assert summary.jobs == summary.final_jobs == len(expected.jobs) == 150
    assert summary.job_lines == expected.job_lines
    assert summary.activity_events == expected.activity
    assert summary.quarantined == len(expected.quarantine) == summary.by_kind["quarantine"]
    assert summary.skipped == len(expected.skipped)
    assert sum(summary.by_kind.values()) == summary.objects
    assert summary.expected == expected
    assert orjson.loads(orjson.dumps(summary.as_dict()))["jobs"] == 150


def test_expected_archive_holds_one_row_per_job(corpus: list[SynthObject]) -> None:
    expected = synth.expected_archive(corpus)
    finals: list[Truth] = [
        obj.truth for obj in corpus if obj.truth.kind == synth.KIND_JOB and obj.truth.is_final
    ]

    assert len(expected.jobs) == len(expected.finals) == len(finals) == 2000
    assert expected.job_lines == sum(t.line_count or 0 for t in finals)
    assert sum(expected.jobs_by_day.values()) == 2000
    assert expected.timed_lines < expected.job_lines  # new-format details carry no line_stat
    assert set(expected.quarantine.values()) == set(synth.QUARANTINE_REASONS)


def test_echoed_secrets_are_in_the_truth_at_every_depth_and_inside_json_strings(
    corpus: list[SynthObject],
) -> None:
    # GIVEN the corpus's objects that echo credentials (HTTP steps, connection events)
    echoing = [obj for obj in corpus if SECRET_TAG.encode() in obj.body]
    # THEN each one's truth lists its secrets, every listed secret is in its body, no other object has one,
    # and they sit at several depths of the payload and inside JSON held in strings
    assert echoing and all(obj.truth.secrets for obj in echoing)
    assert all(obj.truth.secrets == () for obj in corpus if obj not in echoing)
    for obj in echoing:
        body = obj.body.decode()
        assert all(secret in body or secret.replace('"', '\\"') in body for secret in obj.truth.secrets)
    kinds = {obj.truth.kind for obj in echoing}
    assert kinds == {"job", "activity"}
    expected = synth.expected_archive(corpus)
    assert expected.secrets == {secret for obj in corpus for secret in obj.truth.secrets}
    bare = [orjson.loads(obj.body) for obj in echoing if obj.truth.envelope == "bare"]
    outputs = [line["output"] for job in bare for line in job["lines"] if "raw_response" in line["output"]]
    output = outputs[0]
    assert SECRET_TAG in output["body"]["session"]["access_token"]
    assert SECRET_TAG in output["body"]["session"]["keys"][0]["password"]
    raw = orjson.loads(output["raw_response"])
    assert (
        SECRET_TAG in raw["auth"]["client_secret"]
        and SECRET_TAG in orjson.loads(raw["auth"]["grant"])["refresh_token"]
    )
