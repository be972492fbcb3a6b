"""The held-out small-object corpus of design.md, "Benchmark corpora", written by the bench itself.

About 20,000 objects of 3.7 KB on average (77 MB), over 30 days and 40 recipes: mostly bare
job-history objects with 1 to 12 short step lines, some full-details envelopes (the job
object plus its `Log_Str` string copy) and status-only envelopes (no lines), 1% malformed
(empty, cut short, not JSON, JSON of no known shape). It is held out from `archiver.local.synth`
on purpose: its own seeded generator, vocabulary and mix, so a change to synth's default
corpus (or an engine tuned on it) cannot move these figures. It imports nothing of the
archiver, so the expected row counts it returns are an independent check of the archive.

Every job has exactly one object (one state), so the expected archive is simple: one `jobs`
row per well-formed object, its lines in `job_lines` (none for status-only envelopes), one
quarantined object per malformed one.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

VERSION = 1
"""Bump when the generator's output changes: the bench rewrites cached corpora whose stamp differs."""

# The mix, as shares of all objects.
MALFORMED_SHARE = 0.01
DETAILS_SHARE = 0.07
STATUS_SHARE = 0.07
FAILED_SHARE = 0.08
EMBEDDED_SHARE = 0.12
"""Jobs of the embedded-partner workspace: numeric ids, the key's seven 3-digit folders."""

_ADAPTERS = (
    ("http", "get_request"),
    ("http", "post_request"),
    ("salesforce", "upsert_record"),
    ("salesforce", "search_records"),
    ("netsuite", "get_record"),
    ("slack", "post_message"),
    ("zendesk", "update_ticket"),
    ("workato_list", "accumulate"),
    ("logger", "log_message"),
    ("google_sheets", "add_row"),
    ("snowflake", "run_query"),
    ("email", "send_mail"),
)
_TRIGGERS = (("clock", "scheduled_event"), ("workato_webhooks", "new_event"), ("salesforce", "new_object"))
_WORDS = (
    "invoice synced", "order shipped", "contact updated", "ticket closed", "refund issued",
    "lead assigned", "payment captured", "row appended", "message posted", "record skipped",
)  # fmt: skip
_NAMES = ("Ana", "Bo", "Chen", "Dara", "Eli", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kemal", "Lea")
_ERRORS = (
    ("Workato::Connector::Sdk::RequestError", "429 Too Many Requests"),
    ("Timeout::Error", "execution expired"),
    ("ArgumentError", "Field 'email' is required"),
)


@dataclass(frozen=True, slots=True)
class _Recipe:
    id: int
    name: str
    steps: tuple[tuple[str, str], ...]  # trigger first


@dataclass(frozen=True, slots=True)
class _Workspace:
    user_id: int
    name: str
    embedded: bool
    recipes: tuple[_Recipe, ...]


@dataclass(slots=True)
class HeldOutSummary:
    """What was written, and what the archive must hold."""

    objects: int = 0
    total_bytes: int = 0
    jobs: int = 0
    job_lines: int = 0
    quarantined: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def _world(rng: random.Random, recipes: int, workspaces: int = 3) -> list[_Workspace]:
    """`workspaces` workspaces sharing `recipes` recipes; the last is an embedded partner.

    Three workspaces hold 45%, 35% and 20% of the recipes; more hold equal shares.
    """
    shares = (0.45, 0.35, 0.20) if workspaces == 3 else (1 / workspaces,) * workspaces
    counts = [max(1, round(recipes * share)) for share in shares]
    counts[0] += recipes - sum(counts)
    workspaces = []
    next_recipe = 310_000
    for index, count in enumerate(counts):
        made = []
        for _ in range(count):
            next_recipe += rng.randint(7, 900)
            trigger = rng.choice(_TRIGGERS)
            actions = tuple(rng.choice(_ADAPTERS) for _ in range(rng.randint(0, 11)))
            name = f"{rng.choice(_WORDS).capitalize()} to {rng.choice(('ERP', 'CRM', 'warehouse', 'Slack'))}"
            made.append(_Recipe(next_recipe, name, (trigger, *actions)))
        label = "Partner" if index == len(counts) - 1 else ("Ops", "Finance")[index % 2]
        workspaces.append(
            _Workspace(
                user_id=rng.randint(10_000, 9_999_999),
                name=f"{rng.choice(_NAMES)} {label}",
                embedded=index == len(counts) - 1,
                recipes=tuple(made),
            )
        )
    return workspaces


def _iso(moment: dt.datetime, offset_minutes: int) -> str:
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


def _line(rng: random.Random, number: int, step: tuple[str, str], at: dt.datetime) -> dict[str, Any]:
    adapter, operation = step
    who = rng.choice(_NAMES)
    what = rng.choice(_WORDS)
    spent = round(rng.random() * 0.4, 4)
    return {
        "recipe_line_number": number,
        "adapter_name": adapter,
        "adapter_operation": operation,
        "input": {"id": str(rng.getrandbits(36)), "note": f"{what} for {who}"},
        "output": {
            "ok": True,
            "id": rng.getrandbits(30),
            "message": what,
            "request_id": f"{rng.getrandbits(64):016x}-{rng.getrandbits(32):08x}",
        },
        "mask_data": False,
        "line_stat": {
            "total": spent,
            "details": [
                {"name": "execute", "count": 1, "total": spent},
                {"name": "serialize", "count": 1, "total": round(spent / 50, 5)},
            ],
        },
        "error": None,
        "started_at": _iso(at + dt.timedelta(milliseconds=number * 37), 0),
    }


def _job(
    rng: random.Random, space: _Workspace, recipe: _Recipe, job_id: str, day: dt.date, *, lines: bool
) -> dict[str, Any]:
    started = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(
        seconds=rng.randrange(86_400), milliseconds=rng.randrange(1000)
    )
    completed = started + dt.timedelta(milliseconds=rng.randint(40, 90_000))
    failed = rng.random() < FAILED_SHARE
    offset = rng.choice((0, -420, -300, 60, 330))
    steps = recipe.steps[: rng.randint(1, len(recipe.steps))] if failed else recipe.steps
    error_type, message = rng.choice(_ERRORS) if failed else (None, None)
    body_id: int | str = int(job_id) if space.embedded else job_id
    job: dict[str, Any] = {
        "id": body_id,
        "flow_id": recipe.id,
        "recipe_id": recipe.id,
        "title": f"{steps[0][0]}: {rng.choice(_WORDS)} #{rng.randint(1000, 99_999)}",
        "status": "failed" if failed else "succeeded",
        "is_poll_error": False,
        "is_test": False,
        "started_at": _iso(started, offset),
        "completed_at": _iso(completed, offset),
        "master_job_id": body_id,
        "action_count": len(steps) - 1,
        "error": message,
        "error_type": error_type,
        "context": {
            "user_id": space.user_id,
            "user_name": space.name,
            "recipe_id": recipe.id,
            "recipe_name": recipe.name,
            "recipe_url": f"https://app.workato.com/recipes/{recipe.id}",
            "job_url": f"https://app.workato.com/recipes/{recipe.id}/job/{job_id}",
        },
    }
    if lines:
        job["lines"] = [_line(rng, number, step, started) for number, step in enumerate(steps)]
    return job


def _key(space: _Workspace, recipe: _Recipe, day: dt.date, job_id: str, job: dict[str, Any]) -> str:
    stamp = dt.datetime.fromisoformat(job["completed_at"]).astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    name = f"{space.user_id}-{recipe.id}-{job_id}-{stamp}-{job['status']}.json"
    folder = "/".join(f"{int(job_id):021d}"[i : i + 3] for i in range(0, 21, 3)) if space.embedded else job_id
    return f"{space.user_id}/jobs/{recipe.id}/{day:%Y%m%d}/{folder}/{name}"


def _malformed(rng: random.Random, job: dict[str, Any], index: int) -> bytes:
    kind = index % 4
    if kind == 0:
        return b""
    text = orjson.dumps(job)
    if kind == 1:  # cut short (at an ASCII byte, so it is not a UTF-8 fault)
        return text[: rng.randint(len(text) // 4, len(text) * 3 // 4)]
    if kind == 2:
        return text.replace(b'"is_test":false', b"'is_test':False", 1)
    return orjson.dumps({"heartbeat": True, "sent_at": job["started_at"]})


def generate(
    objects: int,
    *,
    seed: int,
    start: dt.date,
    days: int,
    recipes: int = 40,
    workspaces: int = 3,
    world_seed: int | None = None,
) -> Iterator[tuple[str, bytes, str, int]]:
    """(key, body, kind, expected job_lines) for `objects` objects, in a fixed order.

    With `world_seed`, the workspaces and recipes come from that seed and the jobs from
    `seed` (so a later day of the same world is another corpus), and recipes are busy in
    a skewed way, as real ones are (the n-th of a workspace runs 1/n² as often as its first):
    a few objects per recipe-day folder, many folders empty.
    """
    rng = random.Random(f"heldout-{VERSION}-{seed}")
    if world_seed is None:
        world = _world(rng, recipes)
        weights = [0.44, 0.36, EMBEDDED_SHARE]
    else:
        world = _world(random.Random(f"heldout-{VERSION}-world-{world_seed}"), recipes, workspaces)
        weights = [(1 - EMBEDDED_SHARE) / (len(world) - 1)] * (len(world) - 1) + [EMBEDDED_SHARE]
    skewed = world_seed is not None
    all_days = [start + dt.timedelta(days=i) for i in range(days)]
    next_embedded = rng.randint(10**9, 10**10)
    seen: set[str] = set()
    malformed = 0
    for _ in range(objects):
        space = rng.choices(world, weights)[0]
        if skewed:
            recipe = rng.choices(space.recipes, [1 / (n + 1) ** 2 for n in range(len(space.recipes))])[0]
        else:
            recipe = rng.choice(space.recipes)
        day = rng.choice(all_days)
        if space.embedded:
            next_embedded += rng.randint(1, 5000)
            job_id = str(next_embedded)
        else:
            job_id = f"j-{rng.getrandbits(48):012x}"
        if job_id in seen:
            continue
        seen.add(job_id)
        roll = rng.random()
        kind = (
            "malformed"
            if roll < MALFORMED_SHARE
            else "details"
            if roll < MALFORMED_SHARE + DETAILS_SHARE
            else "status"
            if roll < MALFORMED_SHARE + DETAILS_SHARE + STATUS_SHARE
            else "bare"
        )
        job = _job(rng, space, recipe, job_id, day, lines=kind != "status")
        key = _key(space, recipe, day, job_id, job)
        line_count = len(job.get("lines", ()))
        if kind == "malformed":
            body = _malformed(rng, job, malformed)
            malformed += 1
            line_count = 0
        elif kind == "details":
            moment = int(dt.datetime.fromisoformat(job["completed_at"]).timestamp() * 1_000_000)
            body = orjson.dumps(
                {
                    "source": "Workato Prod Environment",
                    "Env": "PROD",
                    "Time_utc": moment // 1000,
                    "Time_micro": moment,
                    "Log": job,
                    "Log_Str": orjson.dumps(job).decode(),
                }
            )
        elif kind == "status":
            body = orjson.dumps(
                {
                    "source": "Workato Prod Environment",
                    "UserID": str(space.user_id),
                    "log": job,
                    "log_message": f"Job {job_id} {job['status']}",
                }
            )
        else:
            body = orjson.dumps(job)
        yield key, body, kind, line_count


def write_heldout(
    outdir: Path,
    objects: int,
    *,
    seed: int,
    start: dt.date,
    days: int,
    recipes: int = 40,
    workspaces: int = 3,
    world_seed: int | None = None,
) -> HeldOutSummary:
    """Write the corpus under `outdir` (keys as relative paths) and say what the archive must hold."""
    summary = HeldOutSummary()
    made: set[str] = set()
    shape = {"recipes": recipes, "workspaces": workspaces, "world_seed": world_seed}
    for key, body, kind, line_count in generate(objects, seed=seed, start=start, days=days, **shape):
        path = os.path.join(outdir, *key.split("/"))
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(path, "wb") as handle:
            handle.write(body)
        summary.objects += 1
        summary.total_bytes += len(body)
        summary.count(kind)
        if kind == "malformed":
            summary.quarantined += 1
        else:
            summary.jobs += 1
            summary.job_lines += line_count
    return summary
