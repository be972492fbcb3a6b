"""What the handlers need from the engine beyond `engine.api` today, built on that public API alone.

Each function here stands in for an engine capability the handlers would rather
call directly; the signature the engine could offer instead is in its docstring.
When the engine grows it, the function shrinks to the call (or goes away), and the
handlers do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from archiver.config import Settings
from archiver.engine import api
from archiver.errors import AccessDeniedError, ArchiverError, ConfigError
from archiver.storage.store import ObjectStore

PLANS_PREFIX = "_archiver/plans/"
"""Where backfill manifests go, relative to the archive's root (the archiver's own folder)."""


@dataclass(slots=True)
class KeysOutcome:
    """Which of the keys handed to `archive_keys` could not be archived, and why."""

    report: api.RunReport | None
    failed: dict[str, str] = field(default_factory=dict)  # key -> error kind and message

    @property
    def ok(self) -> bool:
        return not self.failed


async def archive_keys(
    source: ObjectStore, dest: ObjectStore, settings: Settings, keys: Sequence[str]
) -> KeysOutcome:
    """Archive these source keys; the outcome names every key that is not archived.

    Wanted from the engine: `compact_keys(...) -> RunReport` whose `failures` name every
    key it could not archive, a failed *unit* included (one failure per key of the
    unit, `kind` saying why), instead of raising for the whole call; one unit's
    conflict storm should not fail its siblings' messages. Until then a raised
    retryable error fails every key of the batch, and a settings or permission error
    (which no retry can mend) is raised so the invocation fails loudly.
    """
    try:
        report = await api.compact_keys(source, dest, settings, keys)
    except (ConfigError, AccessDeniedError):
        raise
    except ArchiverError as error:
        reason = f"{type(error).__name__}: {error}"
        return KeysOutcome(report=None, failed=dict.fromkeys(keys, reason))
    wanted = set(keys)
    failed = {
        failure["key"]: f"{failure.get('kind', 'Error')}: {failure.get('error', '')}"
        for failure in report.failures
        if failure.get("key") in wanted
    }
    return KeysOutcome(report=report, failed=failed)


@dataclass(slots=True)
class TimeBoxedRun:
    """A `compact` that may have stopped early: its report and the units it left for later."""

    report: api.RunReport
    units_left: int


async def compact_within(
    source: ObjectStore, dest: ObjectStore, settings: Settings, time_left: Callable[[], float]
) -> TimeBoxedRun:
    """`compact` of the lookback that starts no unit once `time_left()` seconds are too few.

    Wanted from the engine (the lead's plan): `api.compact(..., time_left=...)` stops
    starting units when less than its reserve is left, finishes and commits the units
    in hand, and reports `RunReport.units_left: int` (0 when everything due was done).
    An engine that ignores `time_left` and returns has done every unit, so a report
    without `units_left` means none is left.
    """
    report = await api.compact(source, dest, settings, time_left=time_left)
    return TimeBoxedRun(report=report, units_left=int(getattr(report, "units_left", 0)))


async def write_manifest(dest: ObjectStore, units: Sequence[api.PlannedUnit], name: str) -> str:
    """Write the units as JSON lines (`{"unit": NAME}`) under `_archiver/plans/`; return the key.

    Wanted from the engine: `api.write_plan(dest, units, name) -> str`, so the manifest's
    home and format live beside the plan that `compact --unit` accepts.
    """
    key = f"{PLANS_PREFIX}{name}.jsonl"
    body = b"".join(orjson.dumps({"unit": unit.unit}) + b"\n" for unit in units)
    await dest.put(key, body)
    return key
