"""Objects the archiver must not archive: malformed ones it quarantines, and non-JSON keys it skips."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from archiver.formats.layout import format_day
from archiver.local.synth.formatting import dumps
from archiver.local.synth.jobs import job_dict, job_key
from archiver.local.synth.plans import Overrides, Plan, Version, draw_plan, versions
from archiver.local.synth.truth import KIND_QUARANTINE, KIND_SKIP, QUARANTINE_REASONS, SynthObject, Truth
from archiver.local.synth.world import World


def malformed_object(world: World, index: int) -> SynthObject:
    """An object the archiver must quarantine, in the job layout or among activity."""
    rng = world.rng
    reason = QUARANTINE_REASONS[index % 4] if index < 8 else rng.choice(QUARANTINE_REASONS)
    in_layout = index < 4 or (index >= 8 and rng.random() < 0.8)
    plan = draw_plan(world, Overrides(envelope="bare", scenario="single", status="succeeded"))
    version = versions(world, plan)[-1]
    body = _malformed_body(rng, reason, plan, version)
    if in_layout:
        truth = Truth(
            kind=KIND_QUARANTINE,
            layout="embedded" if plan.user.embedded else "standard",
            user_id=str(plan.user.id),
            recipe_id=str(plan.recipe.id),
            day=plan.day,
            job_id=plan.job_id,
            status=version.status,
            reason=reason,
        )
        return SynthObject(job_key(plan, version), body, truth)
    token = uuid.UUID(int=rng.getrandbits(128), version=4)
    key = f"{plan.user.id}/activity/{format_day(plan.day)}/{token}.json"
    truth = Truth(kind=KIND_QUARANTINE, user_id=str(plan.user.id), day=plan.day, reason=reason)
    return SynthObject(key, body, truth)


def _malformed_body(rng: random.Random, reason: str, plan: Plan, version: Version) -> bytes:
    """Bytes that fail for `reason`: empty, cut short, not JSON, or JSON of no known shape."""
    if reason == "empty":
        return b""
    if reason == "truncated":
        text = orjson.dumps(job_dict(rng, plan, version, new_format=False, with_lines=True))
        cut = rng.randint(len(text) * 3 // 10, len(text) * 7 // 10)
        while text[cut - 1] >= 0x80:  # never split a UTF-8 sequence: that would be invalid_utf8
            cut -= 1
        return text[:cut]
    if reason == "invalid_json":
        job = job_dict(rng, plan, version, new_format=False, with_lines=False)
        if rng.random() < 0.7:  # the documented summary sample's `"account_id": 0000000`
            job["account_id"] = "@@ACCOUNT@@"
            body = dumps({"log_message": job, "now_utc_micro": version.stamp_us}, True)
            return body.replace(b'"@@ACCOUNT@@"', b"0000000")
        job["account_name"] = "@@NAME@@"
        return dumps(job, True).replace(b'"@@NAME@@"', b"'single quoted'")
    shapes: list[Any] = [
        {"hello": "world"},
        [1, 2, 3],
        {"records": [{"a": 1}], "next_page": None},
        {"type": "heartbeat", "sent_at": version.stamp_us, "ok": True},
    ]
    return orjson.dumps(rng.choice(shapes))


def skipped_objects(world: World, jobs: int, job_folders: Sequence[str]) -> Iterator[SynthObject]:
    """Keys that are not JSON: markers, other tools' files, partial uploads."""
    rng = world.rng
    day = format_day(world.all_days[0])
    skip = Truth(kind=KIND_SKIP)
    yield SynthObject("_SUCCESS", b"", skip)
    yield SynthObject("README.txt", "Workato audit log stream — do not edit.\n".encode(), skip)
    yield SynthObject(f"exports/{day}/jobs.csv", b"job_id,status\nj-AEcaNzd9-dGQ4Bf,succeeded\n", skip)
    user = world.users[0]
    token = uuid.UUID(int=rng.getrandbits(128), version=4)
    yield SynthObject(f"{user.id}/activity/{day}/{token}.json.gz", rng.randbytes(64), skip)
    folders = job_folders or [f"{user.id}/jobs/{user.recipes[0].id}/{day}/j-partial0-upload"]
    for index in range(1 + jobs // 1_000):
        folder = folders[index % len(folders)]
        yield SynthObject(f"{folder}/x{index}.json.tmp", b'{"id": "j-', skip)
