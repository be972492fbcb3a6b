"""Which unit a source key belongs to."""

from __future__ import annotations

from collections.abc import Iterable

from archiver.engine.units import LOOSE_UNIT, day_unit
from archiver.formats.layout import parse_key


def units_of_keys(keys: Iterable[str]) -> set[str]:
    units: set[str] = set()
    for key in keys:
        info = parse_key(key)
        units.add(day_unit(info.day) if info else LOOSE_UNIT)
    return units
