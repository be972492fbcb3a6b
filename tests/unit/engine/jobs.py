"""Source objects for engine unit tests: layout keys and small job-history bodies, real-shaped."""

from __future__ import annotations

import datetime as dt

import orjson

from archiver.engine.generation import Parsed
from archiver.formats.layout import parse_key
from archiver.formats.normalize import read_object
from archiver.storage.store import ObjectInfo

DAY = dt.date(2024, 8, 20)


def job_key(
    job_id: str,
    *,
    user_id: str = "5234",
    recipe_id: str = "77",
    day: dt.date = DAY,
    stamp: str = "101500",
    status: str = "succeeded",
) -> str:
    """`user_id/jobs/recipe_id/YYYYMMDD/job_id/user_id-recipe_id-job_id-STAMP-status.json`."""
    ymd = f"{day:%Y%m%d}"
    name = f"{user_id}-{recipe_id}-{job_id}-{ymd}{stamp}-{status}.json"
    return f"{user_id}/jobs/{recipe_id}/{ymd}/{job_id}/{name}"


def job_folder_of(job_id: str, *, user_id: str = "5234", recipe_id: str = "77", day: dt.date = DAY) -> str:
    return f"{user_id}/jobs/{recipe_id}/{day:%Y%m%d}/{job_id}/"


def job_dict(
    job_id: str,
    *,
    user_id: str = "5234",
    status: str = "succeeded",
    completed_at: str | None = "2024-08-20T10:16:00Z",
    lines: int = 1,
) -> dict[str, object]:
    return {
        "id": job_id,
        "recipe_id": "77",
        "status": status,
        "started_at": "2024-08-20T10:15:00Z",
        "completed_at": completed_at,
        "context": {"user_id": user_id},
        "lines": [
            {"recipe_line_number": i, "adapter_name": "http", "adapter_operation": "get", "input": {}}
            for i in range(lines)
        ],
    }


def job_body(job_id: str, **fields: object) -> bytes:
    """A bare job-history object for one job."""
    return orjson.dumps(job_dict(job_id, **fields))  # type: ignore[arg-type]


def parsed(key: str, body: bytes, etag: str = '"e1"', modified: int = 1) -> Parsed:
    """A fetched object as the worker hands it to version resolution."""
    info = ObjectInfo(key, len(body), etag, modified)
    key_info = parse_key(key)
    stamp = key_info.stamp_us if key_info else None
    return Parsed(info, read_object(body, key=key, etag=etag, key_info=key_info), stamp)
