"""The step lines of a synthetic job: inputs, outputs, timings, and the line that fails.

Lines are written in the old format (with `line_stat`); the job documents drop
what the new format no longer carries.
"""

from __future__ import annotations

import random
import uuid
from typing import TYPE_CHECKING

import orjson

from archiver.local.synth import vocabulary as words
from archiver.local.synth.echoes import http_request, http_response
from archiver.local.synth.formatting import Json, day_start_us, iso

if TYPE_CHECKING:
    from archiver.local.synth.plans import Plan


def full_lines(rng: random.Random, plan: Plan) -> list[Json]:
    """The step lines of a complete run of the plan's recipe (old format, with line_stat)."""
    recipe = plan.recipe
    steps = [words.trigger_step(recipe.trigger), *recipe.actions]
    if recipe.trigger == "function":
        steps.append(("workato_recipe_function", "return_result"))
    numbers = list(recipe.line_numbers)
    while len(numbers) < len(steps):
        numbers.append(numbers[-1] + 1)
    masked = list(recipe.masked) + [False] * (len(steps) - len(recipe.masked))
    large_at = rng.randrange(1, len(steps)) if plan.large and len(steps) > 1 else -1
    lines = []
    for index, (adapter, operation) in enumerate(steps):
        if masked[index]:
            step_input: Json = {"data": "masked"}
            step_output: Json = {"data": "masked"}
        else:
            step_input, step_output = _step_io(rng, plan, adapter, operation)
        if index == large_at:
            step_output = large_output(rng, rng.randint(100_000, 2_000_000))
        lines.append(
            {
                "recipe_line_number": numbers[index],
                "adapter_name": adapter,
                "adapter_operation": operation,
                "input": step_input,
                "output": step_output,
                "mask_data": masked[index],
                "line_stat": _line_stat(rng),
            }
        )
    return lines


def failure(
    rng: random.Random, plan: Plan, full: list[Json], fail_at: int, end_us: int
) -> tuple[list[Json], str, str]:
    """Lines up to the failing one (which carries `error`), and the job's error fields."""
    error_type, message = rng.choice(words.ERRORS)
    failing = {k: v for k, v in full[fail_at].items() if k != "line_stat"}
    failing["output"] = {}
    failing["error"] = message
    failing["line_stat"] = full[fail_at]["line_stat"]
    lines = [*full[:fail_at], failing]
    if plan.failure == "plain":
        return lines, rng.choice(words.PLAIN_ERRORS), error_type
    error = {
        "error_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "error_type": error_type,
        "error_at": iso(end_us - rng.randint(1, 900) * 1_000, plan.offset, 3),
        "adapter": failing["adapter_name"],
        "action": failing["adapter_operation"],
        "line_number": failing["recipe_line_number"],
        "message": message,
        "inner_message": None if rng.random() < 0.7 else f"{error_type}: {message}",
    }
    return lines, orjson.dumps(error).decode(), error_type


def large_output(rng: random.Random, size: int) -> Json:
    """A step output of about `size` bytes: a page of query rows, non-ASCII included."""
    base = rng.randint(1, 10**6)
    row_count = max(1, size // 110)
    return {
        "rows": [
            {
                "id": base + i,
                "name": words.PEOPLE[i % len(words.PEOPLE)],
                "email": f"customer{base + i}@example.com",
                "amount": (i * 7_919) % 1_000_000 / 100,
                "note": words.MESSAGES[i % len(words.MESSAGES)],
            }
            for i in range(row_count)
        ],
        "row_count": row_count,
    }


def _line_stat(rng: random.Random) -> Json:
    details = []
    total = 0.0
    for name in words.STAT_NAMES[: rng.randint(3, len(words.STAT_NAMES))]:
        spent = rng.random() * (0.2 if name == "execute" else 0.0002)
        total += spent
        details.append(
            {"name": name, "count": 1, "average": spent, "total": spent, "min": spent, "max": spent}
        )
    return {"total": total, "details": details}


def _step_io(rng: random.Random, plan: Plan, adapter: str, operation: str) -> tuple[Json, Json]:
    """A plausible (input, output) pair for one step of the given connector."""
    person = rng.choice(words.PEOPLE)
    message = rng.choice(words.MESSAGES)
    if adapter == "clock":
        moment = iso(day_start_us(plan.day), plan.offset, 6)
        return {"time_unit": "minutes", "trigger_every": str(rng.choice((5, 15, 60)))}, {
            "scheduled_time": moment,
            "scheduled_day": words.WEEKDAYS[plan.day.weekday()],
            "scheduled_week": plan.day.isocalendar().week,
        }
    if adapter == "workato_recipe_function":
        if operation == "return_result":
            return {"result": None if rng.random() < 0.5 else {"ok": True}}, {}
        calling_job, calling_recipe = plan.calling or ("", 0)
        return {"parameters_schema_json": '[{"name":"id","type":"string","optional":false,"label":"ID"}]'}, {
            "context": {"calling_job_id": calling_job, "calling_recipe_id": calling_recipe},
            "parameters": {"id": f"{rng.getrandbits(40):x}", "name": person},
        }
    if adapter == "salesforce":
        record = f"003{rng.getrandbits(60):015X}"
        if operation == "search_sobjects":
            return {"sobject_name": "Contact", "Email": words.email(person, 1)}, {
                "Contact": [{"Id": record, "Name": person, "Email": words.email(person, 1)}]
            }
        return {"sobject_name": "Contact", "LastName": person, "Description": message}, {"id": record}
    if adapter == "workato_webhooks":
        return {}, {"order_id": rng.randint(10_000, 99_999), "customer": person, "note": message}
    if adapter == "rest":
        # The HTTP connector echoes its request headers and the whole response (see `echoes`).
        item: Json = {"id": rng.randint(1, 10**9), "label": message}
        seed = f"{plan.job_id}:{item['id']}"
        return http_request(seed, "https://api.example.com/v2/orders"), http_response(seed, person, item)
    if adapter == "snowflake":
        return {"sql": "select id, name, amount from orders where updated_at > :since"}, {
            "rows": [{"ID": rng.randint(1, 10**6), "NAME": person, "AMOUNT": round(rng.random() * 1e4, 2)}]
        }
    if adapter == "slack":
        return {"channel": "#ops-alerts", "text": f"{message} — {person}"}, {
            "ts": f"{rng.random() * 1e9:.6f}"
        }
    if adapter == "jira":
        return {"project_key": "OPS", "summary": f"{message} ({person})"}, {
            "key": f"OPS-{rng.randint(1, 9999)}"
        }
    return {"message": f"{message} {person}", "user_logs_enabled": "false"}, {"message": message}
