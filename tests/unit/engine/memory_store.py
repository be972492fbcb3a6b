"""An in-memory ObjectStore for engine unit tests: the protocol of `storage/store.py`, faithfully.

- listings in key order, a few keys a page, with `prefix`, the '/' delimiter
  (common prefixes) and `start_after` (every key and common prefix up to and
  including it is skipped, as LocalStore and moto do); the last page says so;
- conditional puts: `if_none_match=True` only creates, `if_match=ETAG` only
  replaces that version; a lost condition raises PreconditionFailedError;
- an ETag that changes on every write, even of the same bytes;
- request counts, as the real stores keep them.

Two hooks let a test stage races without mocks: `before_put` runs (and may
write to the store itself) right before a put takes effect, and
`lose_answer(key)` makes the next put of that key take effect and then raise
PreconditionFailedError, as a client whose first answer was lost and whose
retry found its own write in place would see it (`then` runs in between, for a
rival that writes on top before the caller looks).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from archiver.errors import NotFoundError, PreconditionFailedError, StorageError
from archiver.storage.store import Fetched, ListPage, ObjectInfo, RequestCounts

PutHook = Callable[[str], Awaitable[None]]


class MemoryStore:
    """ObjectStore over a dict; `objects[key] = (body, etag, last_modified_us)`."""

    def __init__(self, *, page_size: int = 3, sequential_reads: bool = False) -> None:
        self.page_size = page_size
        self.sequential_reads = sequential_reads
        self.counts = RequestCounts()
        self.objects: dict[str, tuple[bytes, str, int]] = {}
        self.before_put: PutHook | None = None
        self.deleted: list[str] = []
        self.unreadable: set[str] = set()
        """Keys whose GET fails with a retryable StorageError (a persistently failing read)."""
        self._writes = itertools.count(1)
        self._lost: dict[str, PutHook | None] = {}

    @property
    def url(self) -> str:
        return "memory://"

    # -- test conveniences ----------------------------------------------------------

    def add(self, key: str, body: bytes) -> ObjectInfo:
        """Write without counting a request (test setup); returns the object's info."""
        self._store(key, body)
        return self.info(key)

    def info(self, key: str) -> ObjectInfo:
        body, etag, modified = self.objects[key]
        return ObjectInfo(key, len(body), etag, modified)

    def body(self, key: str) -> bytes:
        return self.objects[key][0]

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    def lose_answer(self, key: str, then: PutHook | None = None) -> None:
        """The next put of `key` takes effect, `then` runs, and the put's caller sees a 412."""
        self._lost[key] = then

    def _store(self, key: str, body: bytes) -> str:
        sequence = next(self._writes)
        etag = f'"{hashlib.md5(body).hexdigest()}-{sequence}"'
        self.objects[key] = (body, etag, 1_700_000_000_000_000 + sequence)
        return etag

    # -- the protocol ---------------------------------------------------------------

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        entries: list[tuple[str, bool]] = []
        seen_prefixes: set[str] = set()
        for key in sorted(self.objects):
            if not key.startswith(prefix) or (start_after is not None and key <= start_after):
                continue
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[: cut + len(delimiter)]
                    if common not in seen_prefixes and (start_after is None or common > start_after):
                        seen_prefixes.add(common)
                        entries.append((common, True))
                    continue
            entries.append((key, False))
        if not entries:
            self.counts.list += 1
            yield ListPage(last=True)
            return
        for start in range(0, len(entries), self.page_size):
            self.counts.list += 1
            chunk = entries[start : start + self.page_size]
            yield ListPage(
                tuple(self.info(key) for key, is_prefix in chunk if not is_prefix),
                tuple(key for key, is_prefix in chunk if is_prefix),
                last=start + self.page_size >= len(entries),
            )

    async def get(self, key: str) -> Fetched:
        self.counts.get += 1
        if key not in self.objects:
            raise NotFoundError(f"memory://{key} does not exist")
        if key in self.unreadable:
            raise StorageError(f"cannot read memory://{key}: SlowDown", retryable=True)
        body, etag, _ = self.objects[key]
        self.counts.bytes_read += len(body)
        return Fetched(key, etag, body)

    async def get_file(self, key: str, path: Path) -> str:
        fetched = await self.get(key)
        path.write_bytes(fetched.body)
        return fetched.etag

    async def head(self, key: str) -> ObjectInfo | None:
        self.counts.head += 1
        return self.info(key) if key in self.objects else None

    async def put(
        self, key: str, body: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        self.counts.put += 1
        if self.before_put is not None:
            await self.before_put(key)
        current = self.objects.get(key)
        if if_none_match and current is not None:
            raise PreconditionFailedError(f"memory://{key} exists")
        if if_match is not None and (current is None or current[1] != if_match):
            raise PreconditionFailedError(f"memory://{key} changed")
        etag = self._store(key, body)
        self.counts.bytes_written += len(body)
        if key in self._lost:
            then = self._lost.pop(key)
            if then is not None:
                await then(key)
            raise PreconditionFailedError(f"memory://{key}: the retry of a write that landed")
        return etag

    async def put_file(self, key: str, path: Path) -> str:
        return await self.put(key, path.read_bytes())

    async def delete(self, keys: list[str]) -> None:
        self.counts.delete += 1
        for key in keys:
            self.deleted.append(key)
            self.objects.pop(key, None)

    async def close(self) -> None:
        """Nothing to release."""
