"""Units of work and which of them one invocation takes: all, one named unit, or one shard of N.

A unit is one source day (`day=YYYY-MM-DD`) or `loose` (JSON outside the key layout).

Shards are assigned by a stable hash of the unit name, so workers that list the
source at different moments still agree on who owns which unit.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, replace

from archiver.config import Settings
from archiver.errors import ConfigError

LOOSE_UNIT = "loose"


def day_unit(day: dt.date) -> str:
    return f"day={day.isoformat()}"


def unit_day(unit: str) -> dt.date | None:
    """The day of a `day=YYYY-MM-DD` unit; None for `loose` or anything else."""
    if not unit.startswith("day="):
        return None
    try:
        return dt.date.fromisoformat(unit[4:])
    except ValueError:
        return None


def shard_key(unit: str) -> int:
    return zlib.crc32(unit.encode())


@dataclass(frozen=True, slots=True)
class UnitScope:
    """A unit name, or (index, count) of a shard; neither means every unit."""

    unit: str | None = None
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.unit is not None and self.unit != LOOSE_UNIT and unit_day(self.unit) is None:
            raise ConfigError(f"not a unit: {self.unit!r} (expected day=YYYY-MM-DD or {LOOSE_UNIT})")

    @property
    def everything(self) -> bool:
        return self.unit is None and self.shard is None

    def accepts(self, unit: str) -> bool:
        if self.unit is not None:
            return unit == self.unit
        if self.shard is not None:
            index, count = self.shard
            return shard_key(unit) % count == index
        return True

    def narrow(self, settings: Settings) -> Settings:
        """A day unit needs only its own day listed; the window shrinks to it."""
        day = unit_day(self.unit) if self.unit else None
        if day is None:
            return settings
        return replace(settings, since=day, until=day)
