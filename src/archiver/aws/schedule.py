"""The nightly run: `compact` of the lookback, then `verify` of the days that can no longer change.

A day is final once Workato can no longer redeliver into it and the lookback no
longer re-reads it, so verify covers `verify_span_days` days ending
`verify_after_days` before the scheduled time (a few days, not one, so a missed
night is caught up). The run is time-boxed: it starts no compaction with less than
`start_reserve` seconds left, hands the engine a clock that keeps `verify_reserve`
seconds back for verify and the answer, and skips verify when that time is gone.
Whatever it did not do is in its report; the next invocation continues, and an
invocation killed by the Lambda timeout anyway loses nothing (nothing is published
before its commit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archiver.aws.engine_adapter import compact_within
from archiver.aws.runtime import Runtime
from archiver.aws.tasks import compact_summary, verify_summary
from archiver.engine import api

START_RESERVE_S = 60.0
VERIFY_RESERVE_S = 30.0


@dataclass(frozen=True, slots=True)
class Reserves:
    """Seconds kept back: below `start` no compaction starts; `verify` is kept for verify and the answer."""

    start: float = START_RESERVE_S
    verify: float = VERIFY_RESERVE_S


def scheduled_time(event: Mapping[str, Any], fallback: dt.datetime) -> dt.datetime:
    """The event's `time` (EventBridge scheduled events and the template's Scheduler input carry it)."""
    text = event.get("time") if isinstance(event, Mapping) else None
    if isinstance(text, str) and text:
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return fallback
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return fallback


def verify_window(now: dt.datetime, after_days: int, span_days: int) -> tuple[dt.date, dt.date]:
    """The days verify covers: `span_days` days, the last one `after_days` before `now` (UTC)."""
    until = now.astimezone(dt.UTC).date() - dt.timedelta(days=after_days)
    return until - dt.timedelta(days=span_days - 1), until


def run_schedule(
    runtime: Runtime,
    *,
    now: dt.datetime,
    time_left: Callable[[], float],
    reserves: Reserves = Reserves(),
) -> dict[str, Any]:
    """Compact the lookback, then verify the final days, within the time the invocation has."""
    deployment = runtime.deployment
    result: dict[str, Any] = {"scheduled_time": now.isoformat()}
    if time_left() < reserves.start:
        result["compact"] = {"skipped": f"less than {reserves.start:.0f}s left"}
        result["units_left"] = None
        result["complete"] = False
    else:
        settings = deployment.settings

        def engine_time_left() -> float:
            return time_left() - reserves.verify

        run = runtime.run(lambda source, dest: compact_within(source, dest, settings, engine_time_left))
        result["compact"] = compact_summary("lookback", run.report)
        result["units_left"] = run.units_left
        result["complete"] = run.units_left == 0 and not run.report.failures
    since, until = verify_window(now, deployment.verify_after_days, deployment.verify_span_days)
    if time_left() < reserves.verify:
        result["verify"] = {"skipped": f"less than {reserves.verify:.0f}s left"}
        return result
    window = deployment.settings.with_window(since, until)
    verified = runtime.run(lambda source, dest: api.verify(source, dest, window))
    result["verify"] = verify_summary(verified)
    return result
