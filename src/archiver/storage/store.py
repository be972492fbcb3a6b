"""The one storage interface every other module talks to.

Keys are relative to the store's root (a bucket prefix or a local folder) and
always use '/' as separator. Implementations: `s3.S3Store` (aioboto3) and
`localfs.LocalStore`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object."""

    key: str
    size: int
    etag: str
    last_modified_us: int | None = None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a listing: objects, and common prefixes when a delimiter was given."""

    objects: tuple[ObjectInfo, ...] = ()
    prefixes: tuple[str, ...] = ()
    last: bool = field(default=False, compare=False)
    """Known to be the listing's last page (False: more may follow). A reader that would start a new
    listing past this page's keys can skip it when nothing follows."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """An object's body together with the ETag of the version that was read."""

    key: str
    etag: str
    body: bytes


@dataclass(slots=True)
class RequestCounts:
    """Storage requests made, by kind, for the run report."""

    list: int = 0
    get: int = 0
    put: int = 0
    delete: int = 0
    head: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def as_report(self) -> dict[str, int]:
        return {"list": self.list, "get": self.get, "put": self.put, "delete": self.delete, "head": self.head}

    def usage(self) -> dict[str, int]:
        """Requests by kind plus bytes read and written: one store's line of the report's `by_store`."""
        return self.as_report() | {"bytes_read": self.bytes_read, "bytes_written": self.bytes_written}


class ObjectStore(Protocol):
    """List, get, conditional put, delete: all the archiver ever asks of storage."""

    counts: RequestCounts
    sequential_reads: bool
    """True where a read never waits on a network (a local folder): one read at a time is fastest."""

    @property
    def url(self) -> str:
        """Where the store points, for messages (never includes credentials)."""
        ...

    def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        """Pages of keys under `prefix` in key order; with a delimiter, also common prefixes.

        `start_after` skips every key and common prefix up to and including it.
        """
        ...

    async def get(self, key: str) -> Fetched:
        """The whole object. Raises NotFoundError if it is gone."""
        ...

    async def get_file(self, key: str, path: Path) -> str:
        """Stream the object into a local file (never whole in memory); return its ETag."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's metadata, or None if it does not exist."""
        ...

    async def put(
        self,
        key: str,
        body: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write atomically and return the new ETag.

        `if_none_match=True` writes only if the key does not exist; `if_match=ETAG`
        only if the current version has that ETag. A lost condition raises
        PreconditionFailedError.
        """
        ...

    async def put_file(self, key: str, path: Path) -> str:
        """Upload a local file atomically (multipart for large files); return the ETag."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Delete keys; missing keys are not an error."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
