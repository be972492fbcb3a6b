"""Units of work: their names, the root each source key belongs to, and which units a run takes.

Every source key belongs to one *root*:

- `day=YYYY-MM-DD`: the objects in a layout day folder of that day
  (`user_id/jobs/recipe_id/YYYYMMDD/...`), which is where listing a day finds them,
  including the odd key in there that is not itself in the layout;
- `loose=YYYY-MM-DD`: other JSON whose key holds that date (a `YYYYMMDD` or
  `YYYY-MM-DD` path segment), such as user-activity objects;
- `loose=undated`: every other key outside the layout.

A root is one unit until it holds more than `unit_max_objects` source objects.
Then it is *sealed*: it keeps the job folders it holds, and new folders go to its
children, which split its key range (`day=2024-08-20.0`, `day=2024-08-20.1`, ...,
and so on down). The split is recorded in the sealed unit's ledger head, so every
later run, shard and concurrent worker routes a key to the same unit.

Shards are assigned by a stable hash of the root name, so workers that list the
source at different moments agree on who owns which root.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from dataclasses import dataclass, replace

from archiver.config import Settings
from archiver.errors import ConfigError
from archiver.formats.layout import EMBEDDED_GROUPS, JOBS_FOLDER, parse_day, parse_key

DAY_ROOT = "day="
LOOSE_ROOT = "loose="
UNDATED = "loose=undated"

_NAME = re.compile(r"^(day=\d{4}-\d{2}-\d{2}|loose=\d{4}-\d{2}-\d{2}|loose=undated)((?:\.\d+)*)$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def day_unit(day: dt.date) -> str:
    return f"{DAY_ROOT}{day.isoformat()}"


def loose_unit(day: dt.date | None) -> str:
    return UNDATED if day is None else f"{LOOSE_ROOT}{day.isoformat()}"


def child_unit(parent: str, index: int) -> str:
    return f"{parent}.{index}"


def is_unit(name: str) -> bool:
    match = _NAME.match(name)
    return match is not None and (match.group(1) == UNDATED or root_date(match.group(1)) is not None)


def root_of(unit: str) -> str:
    """The root a unit descends from: `day=2024-08-20.3.1` -> `day=2024-08-20`."""
    return unit.split(".", 1)[0]


def root_date(unit: str) -> dt.date | None:
    """The date of a unit's root (day or dated loose); None for undated."""
    text = root_of(unit).partition("=")[2]
    if not _ISO_DAY.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def unit_day(unit: str) -> dt.date | None:
    """The layout day of a `day=` unit; None for loose units."""
    return root_date(unit) if unit.startswith(DAY_ROOT) else None


def unit_owner(unit: str) -> str:
    """The prefix of the data-file names a unit owns: `d20240820`, `d20240820.3`, `l20240820`, `lundated`."""
    root, dot, path = unit.partition(".")
    day = root_date(root)
    kind = "d" if root.startswith(DAY_ROOT) else "a" if root.startswith("activity=") else "l"
    stem = kind + (f"{day:%Y%m%d}" if day else "undated")
    return stem + dot + path


def key_date(key: str) -> dt.date | None:
    """The first path segment of a key that reads as a date (`YYYYMMDD` or `YYYY-MM-DD`)."""
    for segment in key.split("/")[:-1]:
        day = parse_day(segment) if len(segment) == 8 else _iso_day(segment)
        if day is not None:
            return day
    return None


def _iso_day(segment: str) -> dt.date | None:
    if not _ISO_DAY.match(segment):
        return None
    try:
        return dt.date.fromisoformat(segment)
    except ValueError:
        return None


def root_of_key(key: str) -> str:
    """The root a key belongs to, by the key alone: the same root that listing the source files it under."""
    info = parse_key(key)
    if info is not None:
        return day_unit(info.day)
    parts = key.split("/")
    if len(parts) >= 5 and parts[0] and parts[1] == JOBS_FOLDER and parts[2]:
        day = parse_day(parts[3])
        if day is not None:
            return day_unit(day)  # off the layout, but inside a day folder that listing walks as the day
    return loose_unit(key_date(key))


def folder_of(key: str) -> str:
    """What stays together in one unit: a job's folder with everything under it, else the key itself.

    Routing compares these with split points, so the function agrees with key order
    for every key a LIST can return: each folder is a prefix of its keys, no folder is
    a prefix of another, and every key under a folder gets that folder (files a tool
    left deeper in a job's folder included). A unit's keys are then one contiguous
    range. Under a day folder, `JOB/` is the folder of a standard job; seven 3-digit
    folders are an embedded job's. A job folder named by 3 digits could also be the
    first of an embedded job's seven, so there a standard job's folder is its files'
    common name stem (`JOB/USER-RECIPE-JOB-`): its versions still meet, and embedded
    jobs under the same name still split apart.
    """
    parts = key.split("/")
    if (
        len(parts) < 6
        or parts[1] != JOBS_FOLDER
        or not (parts[0] and parts[2] and parts[4])
        or parse_day(parts[3]) is None
    ):
        return key
    if not _is_group(parts[4]):
        return "/".join(parts[:5]) + "/"
    embedded = 4 + EMBEDDED_GROUPS
    if len(parts) > embedded and all(map(_is_group, parts[5:embedded])):
        return "/".join(parts[:embedded]) + "/"
    stem = f"{parts[0]}-{parts[2]}-{parts[4]}-"
    if parts[5].startswith(stem):
        return "/".join(parts[:5]) + "/" + stem
    return key


def _is_group(folder: str) -> bool:
    """One of the 3-digit folders an embedded job id is split into."""
    return len(folder) == 3 and folder.isascii() and folder.isdigit()


def shard_key(unit: str) -> int:
    return zlib.crc32(root_of(unit).encode())


@dataclass(frozen=True, slots=True)
class UnitScope:
    """A unit name (its whole subtree), or (index, count) of a shard of roots; neither means every unit."""

    unit: str | None = None
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.unit is not None and not is_unit(self.unit):
            raise ConfigError(
                f"not a unit: {self.unit!r} (expected a name printed by `archiver plan`, "
                f"such as day=YYYY-MM-DD, day=YYYY-MM-DD.N, loose=YYYY-MM-DD or {UNDATED})"
            )

    @property
    def everything(self) -> bool:
        return self.unit is None and self.shard is None

    def accepts_root(self, root: str) -> bool:
        if self.unit is not None:
            return root_of(self.unit) == root
        if self.shard is not None:
            index, count = self.shard
            return shard_key(root) % count == index
        return True

    def narrow(self, settings: Settings) -> Settings:
        """A dated unit needs only its own day listed; the window shrinks to it."""
        day = root_date(self.unit) if self.unit else None
        if day is None:
            return settings
        return replace(settings, since=day, until=day)
