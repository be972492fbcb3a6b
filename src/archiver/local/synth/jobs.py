"""Job documents: the job object as Workato writes it, wrapped as each stream wraps it, and its key.

Old and new full-details formats, string and numeric ids, the `Log_Str` copy that
may be stale or cut short, and the ~39 MB job that sits just under Workato's limit.
"""

from __future__ import annotations

import base64
import random
from typing import Any

import orjson

from archiver.formats.layout import format_day
from archiver.local.synth.echoes import secrets_in
from archiver.local.synth.formatting import Json, dumps, iso, spaced, stamp
from archiver.local.synth.plans import Overrides, Plan, Version, draw_plan, versions
from archiver.local.synth.truth import (
    ENVELOPE_STREAM,
    JOB_HISTORY,
    KIND_JOB,
    LINE_ENVELOPES,
    SynthObject,
    Truth,
)
from archiver.local.synth.world import FORMAT_CHANGE, World

BIG_OBJECT_BYTES = 39_000_000
NEW_FORMAT_DROPPED_CONTEXT = (
    "repeated_job",
    "job_created_at",
    "job_id",
    "master_job_id",
    "calling_recipe_id",
    "calling_job_id",
    "is_repeat",
    "repeat_count",
    "parent_job_id",
)
"""The context fields full job details written on or after FORMAT_CHANGE no longer carry."""


def job_dict(rng: random.Random, plan: Plan, v: Version, *, new_format: bool, with_lines: bool) -> Json:
    """The job object as Workato writes it (old format unless `new_format`)."""
    user, recipe = plan.user, plan.recipe
    strings = plan.string_ids or v.envelope == "status"
    recipe_id: int | str = str(recipe.id) if strings else recipe.id
    calling_job, calling_recipe = plan.calling or (None, None)
    calling_recipe_id = str(calling_recipe) if strings and calling_recipe is not None else calling_recipe
    is_repeat = plan.repeat_count > 0
    parent = plan.master_job_id if is_repeat else None
    started = iso(v.started_us, plan.offset, plan.digits, plan.zulu)
    completed = None if v.completed_us is None else iso(v.completed_us, plan.offset, plan.digits, plan.zulu)
    lines = v.lines
    action_count = max(0, len(lines) - 1) if isinstance(lines, list) else len(recipe.actions)
    job_url = f"https://app.workato.com/recipes/{recipe.id}/job/{plan.body_id}"
    job: Json = {
        "id": plan.body_id,
        "master_job_id": plan.master_job_id,
        "recipe_id": recipe_id,
        "calling_job_id": calling_job,
        "calling_recipe_id": calling_recipe_id,
        "title": plan.title,
        "status": v.status,
        "is_repeat": is_repeat,
        "is_test": plan.is_test,
        "is_test_case_job": False,
        "started_at": started,
        "completed_at": completed,
        "repeat_count": plan.repeat_count,
        "action_count": action_count,
        "parent_id": parent,
        "flow_id": f"{recipe.id}-flow" if strings else recipe.id,
        "error_type": v.error_type,
        "is_poll_error": False,
        "account_id": str(user.id) if strings else user.id,
        "account_name": user.name,
        "environment_type": user.env_type,
        "environment_id": f"{user.env_id}-env" if strings else user.env_id,
        "hq_account_id": 0,
        "hq_account_name": "",
        "error": v.error,
        "report": _report(plan),
    }
    context: Json = {
        "user_id": str(user.id) if strings else user.id,
        "user_name": user.name,
        "user_email": user.email,
        "recipe_id": recipe_id,
        "recipe_url": f"https://app.workato.com/recipes/{recipe.id}",
        "recipe_name": recipe.name,
        "recipe_path": recipe.path,
        "job_id": plan.body_id,
        "master_job_id": plan.master_job_id,
        "calling_recipe_id": calling_recipe_id,
        "calling_job_id": calling_job,
        "is_repeat": is_repeat,
        "is_test": plan.is_test,
        "repeat_count": plan.repeat_count,
        "job_url": job_url,
        "job_created_at": iso(v.started_us - rng.randint(1_000, 900_000), plan.offset, 6),
        "repeated_job": is_repeat,
        "parent_job_id": parent,
        "user_external_id": None if not user.embedded else f"ext-{user.id}",
    }
    if new_format:
        del job["parent_id"]
        for name in NEW_FORMAT_DROPPED_CONTEXT:
            del context[name]
    job["context"] = context
    if with_lines:
        if isinstance(lines, list) and new_format:
            lines = [{k: value for k, value in line.items() if k != "line_stat"} for line in lines]
        job["lines"] = lines
    return job


def _report(plan: Plan) -> Json:
    columns = plan.recipe.report_columns
    if not columns:
        return {}
    values = [plan.title[:40], plan.user.team, str(plan.day), plan.recipe.name]
    return {f"custom_column_{i}": values[i % len(values)] for i in range(columns)}


def job_key(plan: Plan, v: Version) -> str:
    """The object's key in the standard layout, or the embedded layout's 3-digit folders."""
    user_id, recipe_id, job_id = plan.user.id, plan.recipe.id, plan.job_id
    name = f"{user_id}-{recipe_id}-{job_id}-{stamp(v.stamp_us, plan.long_stamp)}-{v.status}.json"
    if plan.user.embedded:
        padded = f"{int(job_id):021d}"
        folder = "/".join(padded[i : i + 3] for i in range(0, 21, 3))
    else:
        folder = job_id
    return f"{user_id}/jobs/{recipe_id}/{format_day(plan.day)}/{folder}/{name}"


def job_object(rng: random.Random, plan: Plan, v: Version) -> SynthObject:
    """One version of a job as its stream writes it, with its truth."""
    envelope = v.envelope
    details_format = None
    if envelope == "details":
        details_format = "new" if plan.day >= FORMAT_CHANGE else "old"
    new_format = details_format == "new"
    with_lines = envelope in LINE_ENVELOPES
    job = job_dict(rng, plan, v, new_format=new_format, with_lines=with_lines)
    body = dumps(_wrap(rng, plan, v, job, new_format), plan.pretty)
    lines = v.lines
    if not with_lines:
        line_count, truncated, masked, timed = None, None, None, None
    elif isinstance(lines, str):
        line_count, truncated, masked, timed = 0, True, 0, 0
    else:
        line_count, truncated = len(lines), False
        masked = sum(1 for line in lines if line["mask_data"])
        timed = 0 if new_format else line_count
    truth = Truth(
        kind=KIND_JOB,
        stream_type=ENVELOPE_STREAM[envelope],
        envelope=envelope,
        layout="embedded" if plan.user.embedded else "standard",
        format=details_format,
        user_id=str(plan.user.id),
        recipe_id=str(plan.recipe.id),
        day=plan.day,
        job_id=plan.job_id,
        status=v.status,
        is_final=v.final,
        line_count=line_count,
        lines_truncated=truncated,
        masked_lines=masked,
        timed_lines=timed,
        started_us=v.started_us,
        completed_us=v.completed_us,
        error_type=v.error_type,
        secrets=secrets_in(lines) if with_lines and isinstance(lines, list) else (),
    )
    return SynthObject(job_key(plan, v), body, truth)


def _wrap(rng: random.Random, plan: Plan, v: Version, job: Json, new_format: bool) -> Any:
    """The document around the job object, as the plan's envelope writes it."""
    envelope, user = v.envelope, plan.user
    if envelope in ("bare", "json_string"):
        return job if envelope == "bare" else orjson.dumps(job).decode()
    if envelope == "summary":
        return {"log_message": job, "now_utc_micro": v.stamp_us + rng.randrange(1_000_000)}
    if envelope == "status":
        return {
            "source": f"Workato {user.env_type.capitalize()} Environment",
            "UserID": str(user.id),
            "log": job,
            "log_message": f"Job {plan.job_id} {v.status}",
        }
    if envelope == "details":
        written = v.completed_us if v.completed_us is not None else v.started_us
        written -= written % 1_000
        return {
            "source": f"Workato {user.env_type.capitalize()} Environment",
            "Env": f"{user.team.split()[0].upper()}_OEM" if user.embedded else user.env_type.upper(),
            "Time": spaced(written, plan.offset, zone=True),
            "Time_utc": written // 1_000,
            "Time_micro": written,
            "Time_nano": written * 1_000,
            "Log": job,
            "Log_Str": _log_str(rng, plan, v, job, new_format),
        }
    if envelope == "log_entries":
        return {"logEntries": [job], "source": "s3-forwarder"}
    return {"workato": {"event": job, "stream": "job_history"}}


def _log_str(rng: random.Random, plan: Plan, v: Version, job: Json, new_format: bool) -> str:
    """The string copy of the job: usually faithful, sometimes stale or cut short."""
    text = orjson.dumps(job).decode()
    if plan.log_str == "broken":
        return text[: max(1, len(text) * 3 // 5)]
    if plan.log_str == "stale":
        stale = Version("running", v.started_us, None, v.stamp_us, [], None, None, v.envelope, False)
        return orjson.dumps(job_dict(rng, plan, stale, new_format=new_format, with_lines=True)).decode()
    return text


def big_object(world: World) -> SynthObject:
    """A job-history object of about 39 MB with real lines, just under the 40 MB limit."""
    rng = world.rng
    plan = draw_plan(world, Overrides(envelope="bare", embedded=False, scenario="single", status="succeeded"))
    plan.pretty = False
    version = versions(world, plan)[-1]
    template = version.lines[0] if isinstance(version.lines, list) else {}
    chunk = 1_000_000
    count = BIG_OBJECT_BYTES // chunk - 1
    lines: list[Json] = []
    for index in range(count):
        payload = base64.b64encode(rng.randbytes(chunk * 3 // 4)).decode()
        lines.append(
            {
                "recipe_line_number": index,
                "adapter_name": "box",
                "adapter_operation": "download_file",
                "input": {"file_id": str(rng.getrandbits(40))},
                "output": {"name": f"scan-{index:03d}.pdf", "content_base64": payload},
                "mask_data": False,
                "line_stat": template.get("line_stat", {"total": 0.1, "details": []}),
            }
        )
    version.lines = lines
    job = job_dict(rng, plan, version, new_format=False, with_lines=True)
    # Fill the last line so the whole object lands on BIG_OBJECT_BYTES.
    size = len(orjson.dumps(job))
    missing = max(0, BIG_OBJECT_BYTES - size)
    lines[-1]["output"]["padding"] = "=" * max(0, missing - len(',"padding":""'))
    truth = Truth(
        kind=KIND_JOB,
        stream_type=JOB_HISTORY,
        envelope="bare",
        layout="standard",
        user_id=str(plan.user.id),
        recipe_id=str(plan.recipe.id),
        day=plan.day,
        job_id=plan.job_id,
        status=version.status,
        is_final=True,
        line_count=count,
        lines_truncated=False,
        masked_lines=0,
        timed_lines=count,
        started_us=version.started_us,
        completed_us=version.completed_us,
    )
    return SynthObject(job_key(plan, version), orjson.dumps(job), truth)
