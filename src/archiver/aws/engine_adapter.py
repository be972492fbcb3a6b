"""The engine calls the handlers make, turned into what a handler answers with.

`archive_keys` says, per key, whether it is archived (what `batchItemFailures`
is made of); `compact_within` is the time-boxed compact of the nightly run;
`write_manifest` is the backfill's plan as a JSONL manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from archiver.config import Settings
from archiver.engine import api
from archiver.errors import AccessDeniedError, ArchiverError, ConfigError
from archiver.storage.store import ObjectInfo, ObjectStore

PLANS_PREFIX = api.PLANS_PREFIX


@dataclass(slots=True)
class KeysOutcome:
    """Which of the keys handed to `archive_keys` could not be archived, and why."""

    report: api.RunReport | None
    failed: dict[str, str] = field(default_factory=dict)  # key -> error kind and message

    @property
    def ok(self) -> bool:
        return not self.failed


async def archive_keys(
    source: ObjectStore,
    dest: ObjectStore,
    settings: Settings,
    keys: Sequence[str],
    described: Sequence[ObjectInfo] = (),
    *,
    sweep: bool = True,
) -> KeysOutcome:
    """Archive these source keys and `described` objects (whose size and ETag their events gave).

    The outcome names every key that is not archived, and why.

    A unit that fails fails only its own keys (the engine names them in
    `unarchived_keys`); a settings or permission error, which no retry can mend, is
    raised so the invocation fails loudly.
    """
    try:
        report = await api.compact_keys(source, dest, settings, keys, described=described, sweep=sweep)
    except (ConfigError, AccessDeniedError):
        raise
    except ArchiverError as error:
        reason = f"{type(error).__name__}: {error}"
        return KeysOutcome(report=None, failed=dict.fromkeys([*keys, *(i.key for i in described)], reason))
    if any(failure.get("kind") == "AccessDeniedError" for failure in report.failures):
        raise AccessDeniedError(
            next(f["error"] for f in report.failures if f.get("kind") == "AccessDeniedError")
        )
    wanted = {*keys, *(info.key for info in described)}
    reasons = {
        failure["key"]: f"{failure.get('kind', 'Error')}: {failure.get('error', '')}"
        for failure in report.failures
        if "key" in failure
    }
    unit_reason = next(
        (f"{f.get('kind', 'Error')}: {f.get('error', '')}" for f in report.failures if "unit" in f),
        "not archived",
    )
    failed = {key: reasons.get(key, unit_reason) for key in report.unarchived_keys if key in wanted}
    return KeysOutcome(report=report, failed=failed)


@dataclass(slots=True)
class TimeBoxedRun:
    """A `compact` that may have stopped early: its report and the units it left for later."""

    report: api.RunReport
    units_left: int


async def compact_within(
    source: ObjectStore, dest: ObjectStore, settings: Settings, time_left: Callable[[], float]
) -> TimeBoxedRun:
    """`compact` of the lookback that starts no unit once `time_left()` seconds are too few."""
    report = await api.compact(source, dest, settings, time_left=time_left)
    return TimeBoxedRun(report=report, units_left=len(report.units_left))


async def write_manifest(dest: ObjectStore, units: Sequence[api.PlannedUnit], name: str) -> str:
    """Write the units as JSON lines (`{"unit": NAME}`) under `_archiver/plans/`; return the key."""
    return await api.write_plan(dest, units, name)
