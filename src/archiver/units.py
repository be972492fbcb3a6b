"""Which units of work one invocation takes: all, one named unit, or one shard of N.

Shards are assigned by a stable hash of the unit name, so workers that list the
source at different moments still agree on who owns which unit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

from archiver.config import Settings
from archiver.errors import ConfigError
from archiver.ledger import LOOSE_UNIT, unit_day


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
