"""Where `pull-activity` stopped: one small JSON object per pulled workspace under DEST.

`DEST/_archiver/activity-api/checkpoint.json` for the token's own workspace and
`checkpoint-<managed user id>.json` for each embedded customer workspace:

    {"format": 1, "through": "2025-06-10T00:00:00Z", "covered_from": "2024-06-10T00:00:00Z",
     "managed_user_id": null, "base_url": "https://www.workato.com", "updated_at": "..."}

Meaning: every event whose time lies in [covered_from, through] was committed to the
archive's activity sink when the checkpoint was written. It is written only after
that commit, it only moves forward, and only over time that joins what it already
covers, so a crash re-pulls a window and never skips one. Writes are conditional
(If-Match / If-None-Match), so two pullers racing on one workspace cannot move it
backwards.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

import orjson

from archiver.errors import NotFoundError, PreconditionFailedError, StorageError
from archiver.storage.store import ObjectStore

log = logging.getLogger(__name__)

PREFIX = "_archiver/activity-api/"
FORMAT = 1
_WRITE_ATTEMPTS = 5


def checkpoint_key(managed_user_id: str | None) -> str:
    """The checkpoint's key under DEST for one workspace."""
    if managed_user_id is None:
        return f"{PREFIX}checkpoint.json"
    return f"{PREFIX}checkpoint-{managed_user_id}.json"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The span of event time whose events are committed, for one workspace."""

    covered_from: dt.datetime
    through: dt.datetime
    managed_user_id: str | None = None
    base_url: str = ""
    updated_at: dt.datetime | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "through": _iso(self.through),
                "covered_from": _iso(self.covered_from),
                "managed_user_id": self.managed_user_id,
                "base_url": self.base_url,
                "updated_at": None if self.updated_at is None else _iso(self.updated_at),
            }
        )

    @classmethod
    def from_json(cls, data: bytes, *, key: str) -> Checkpoint:
        try:
            value = orjson.loads(data)
            return cls(
                covered_from=_parse(value["covered_from"]),
                through=_parse(value["through"]),
                managed_user_id=value.get("managed_user_id"),
                base_url=str(value.get("base_url") or ""),
                updated_at=_parse(value["updated_at"]) if value.get("updated_at") else None,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            raise StorageError(
                f"{key} is not a pull-activity checkpoint; delete it to pull the last year again"
            ) from None

    def extended(self, start: dt.datetime, end: dt.datetime) -> Checkpoint | None:
        """This checkpoint after [start, end] was committed, or None if that adds nothing.

        A window that begins after `through` leaves a gap nobody pulled, so it does not
        move the checkpoint (its events are archived all the same).
        """
        if start > self.through or end <= self.through:
            if start > self.through:
                log.warning("window %s..%s does not join the checkpoint at %s", start, end, self.through)
            return None
        return replace(self, covered_from=min(self.covered_from, start), through=end)


async def load_checkpoint(store: ObjectStore, key: str) -> tuple[Checkpoint | None, str | None]:
    """The stored checkpoint and its ETag, or (None, None) before the first pull."""
    try:
        fetched = await store.get(key)
    except NotFoundError:
        return None, None
    return Checkpoint.from_json(fetched.body, key=key), fetched.etag


async def advance_checkpoint(
    store: ObjectStore,
    key: str,
    current: Checkpoint | None,
    etag: str | None,
    start: dt.datetime,
    end: dt.datetime,
    *,
    template: Checkpoint,
) -> tuple[Checkpoint | None, str | None]:
    """Record that [start, end] is committed; return the checkpoint now stored and its ETag.

    `template` supplies the fields of a first checkpoint (workspace, base URL, time).
    When another writer got there first, its checkpoint is re-read and extended instead.
    """
    for _ in range(_WRITE_ATTEMPTS):
        if current is None:
            new: Checkpoint | None = replace(template, covered_from=start, through=end)
        else:
            new = current.extended(start, end)
            if new is not None:
                new = replace(new, updated_at=template.updated_at, base_url=template.base_url)
        if new is None:
            return current, etag
        try:
            if etag is None:
                etag = await store.put(key, new.to_json(), if_none_match=True)
            else:
                etag = await store.put(key, new.to_json(), if_match=etag)
            return new, etag
        except PreconditionFailedError:
            current, etag = await load_checkpoint(store, key)
    raise StorageError(f"{key}: other writers kept changing the checkpoint; run again", retryable=True)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: object) -> dt.datetime:
    if not isinstance(text, str):
        raise TypeError("not a timestamp")
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
