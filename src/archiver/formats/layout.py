"""Workato's S3 key layout: parse keys, recognise the folder levels the walker prunes on.

Standard layout::

    user_id/jobs/recipe_id/YYYYMMDD/job_id/user_id-recipe_id-job_id-STAMP-status.json

Embedded-partner layout: the numeric job id is left-padded to 21 digits and split
into seven 3-digit folders in place of the job-id folder. Job ids contain hyphens,
so file names are read from the right.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum

JOBS_FOLDER = "jobs"
EMBEDDED_GROUPS = 7


class KeyLayout(StrEnum):
    """Which of the documented key layouts a key follows."""

    STANDARD = "standard"  # .../YYYYMMDD/job_id/file
    EMBEDDED = "embedded"  # .../YYYYMMDD/ddd/ddd/ddd/ddd/ddd/ddd/ddd/file (job id in 3-digit folders)


_NAME = re.compile(r"^(?P<head>.+)-(?P<stamp>\d{14}|\d{8})-(?P<status>[^/]+)\.json$", re.IGNORECASE)
_DAY = re.compile(r"^\d{8}$")
_GROUP = re.compile(r"^\d{3}$")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a key in the documented layout says about its object."""

    user_id: str
    recipe_id: str
    day: dt.date
    job_id: str
    layout: KeyLayout
    stamp_us: int | None  # the file name's STAMP as UTC microseconds, if readable
    status: str | None  # the job status in the file name, if readable


def is_json_key(key: str) -> bool:
    """True for keys the archiver reads; anything else is skipped and counted."""
    return key.lower().endswith(".json")


def parse_day(folder: str) -> dt.date | None:
    """The date of a `YYYYMMDD` folder name, or None if it is not one."""
    if not _DAY.match(folder):
        return None
    try:
        return dt.date(int(folder[:4]), int(folder[4:6]), int(folder[6:8]))
    except ValueError:
        return None


def format_day(day: dt.date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def parse_stamp(stamp: str) -> int | None:
    """`YYYYMMDDHHMMSS` or `YYYYMMDD` (taken as UTC) to epoch microseconds."""
    try:
        if len(stamp) == 14:
            moment = dt.datetime(
                int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]),
                int(stamp[8:10]), int(stamp[10:12]), int(stamp[12:14]), tzinfo=dt.UTC,
            )  # fmt: skip
        elif len(stamp) == 8:
            moment = dt.datetime(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]), tzinfo=dt.UTC)
        else:
            return None
    except ValueError:
        return None
    return int(moment.timestamp()) * 1_000_000


@functools.lru_cache(maxsize=65_536)
def parse_key(key: str) -> KeyInfo | None:
    """Read a key of either documented layout; None for anything else."""
    parts = key.split("/")
    if len(parts) not in (6, 5 + EMBEDDED_GROUPS) or parts[1] != JOBS_FOLDER:
        return None
    user_id, recipe_id, day_folder = parts[0], parts[2], parts[3]
    if not user_id or not recipe_id:
        return None
    day = parse_day(day_folder)
    if day is None or not is_json_key(parts[-1]):
        return None
    if len(parts) == 6:
        job_id, layout = parts[4], KeyLayout.STANDARD
        if not job_id:
            return None
    else:
        groups = parts[4:-1]
        if not all(_GROUP.match(group) for group in groups):
            return None
        job_id, layout = str(int("".join(groups))), KeyLayout.EMBEDDED
    match = _NAME.match(parts[-1])
    stamp_us = parse_stamp(match["stamp"]) if match else None
    status = match["status"].lower() if match else None
    return KeyInfo(user_id, recipe_id, day, job_id, layout, stamp_us, status)


def job_folder(key: str) -> str:
    """The folder that holds every version of one job: the key up to its file name."""
    return key.rsplit("/", 1)[0] if "/" in key else ""


def decode_event_key(key: str) -> str:
    """Undo the URL encoding S3 event notifications apply to keys (`a+b` -> `a b`)."""
    return urllib.parse.unquote_plus(key)


def day_prefix(user_id: str, recipe_id: str, day: dt.date) -> str:
    return f"{user_id}/{JOBS_FOLDER}/{recipe_id}/{format_day(day)}/"
