"""The object store on a local directory, so the same pipeline runs on a folder.

It behaves like S3 where the archiver can tell: listings come in key order, page by
page, with common prefixes for a delimiter (`localfs_files`); writes are atomic and
conditional writes hold across processes (`localfs_publish`: staged, fsynced, then
renamed into place under a folder lock), so readers never see half a file and a
writer that dies leaves nothing in a data folder.

ETags are opaque tags built from inode, size and modification time, so listing
never reads a file, and `get` returns the ETag `list_pages` showed for the same
version. A rewrite always gets a new tag: writes go to a new file renamed into
place (a new inode), and every write through this store sets the new file's mtime
strictly above the one it replaces, so two same-size writes within one kernel
clock tick still differ (which If-Match relies on). POSIX only.

Names starting with ".archiver-" are reserved for the store: listings skip them and
keys may not use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from archiver.errors import (
    AccessDeniedError,
    ConfigError,
    NotFoundError,
    StorageError,
    UnsafeKeyError,
)
from archiver.storage.localfs_files import RESERVED, folder_entries, object_info, read_file
from archiver.storage.localfs_publish import STAGING, STALE_SECONDS, Staging, publish, remove_file
from archiver.storage.store import Fetched, ListPage, ObjectInfo, RequestCounts

__all__ = ["DELETE_BATCH", "RESERVED", "STAGING", "STALE_SECONDS", "LocalStore", "check_key"]

DELETE_BATCH = 1000
"""Keys per counted delete request, as S3's DeleteObjects."""


def check_key(key: str) -> list[str]:
    """The key's '/'-separated segments, or UnsafeKeyError if it could leave the root.

    Refused: empty keys, absolute keys, '.', '..' and empty segments, backslashes and
    NUL (path separators or terminators somewhere), drive letters on Windows, and the
    reserved temporary-file prefix.
    """
    if not key:
        raise UnsafeKeyError("unsafe key '': empty")
    if "\x00" in key or "\\" in key:
        raise UnsafeKeyError(f"unsafe key {key!r}: contains a NUL or a backslash")
    if key.startswith("/"):
        raise UnsafeKeyError(f"unsafe key {key!r}: absolute")
    if os.name == "nt" and ":" in key:  # pragma: no cover - POSIX-only test runs
        raise UnsafeKeyError(f"unsafe key {key!r}: drive or stream separator")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise UnsafeKeyError(f"unsafe key {key!r}: empty, '.' or '..' segment")
        if segment.startswith(RESERVED):
            raise UnsafeKeyError(f"unsafe key {key!r}: {RESERVED}* names are reserved")
    return segments


class LocalStore:
    """ObjectStore on a directory; keys are '/'-separated paths relative to it."""

    sequential_reads = True

    def __init__(self, root: str | os.PathLike[str], *, page_size: int = 1000):
        """`page_size` entries per listing page (like S3's 1000)."""
        if page_size < 1:
            raise ConfigError("page_size must be >= 1")
        self.root = Path(os.path.abspath(root))
        self._root = str(self.root)
        self.counts = RequestCounts()
        self.page_size = page_size
        self._staging = Staging(self.root)

    @property
    def url(self) -> str:
        return str(self.root)

    async def close(self) -> None:
        """Nothing to release; here for the protocol."""

    async def __aenter__(self) -> LocalStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key))

    def _where(self, key: str) -> str:
        return os.path.join(self.root, key)

    def _os_error(self, error: OSError, action: str, key: str) -> StorageError:
        where = self._where(key)
        if isinstance(error, PermissionError):
            return AccessDeniedError(f"access denied: cannot {action} {where}")
        if isinstance(error, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            return NotFoundError(f"{where} does not exist")
        transient = error.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.EIO)
        return StorageError(f"cannot {action} {where}: {error.strerror or error}", retryable=transient)

    # -- reading -----------------------------------------------------------------

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        """Pages of up to `page_size` entries in key order, one `list` request each.

        `start_after` skips every key and common prefix up to and including it, as
        ListObjectsV2's StartAfter does on moto.
        """
        if delimiter not in (None, "", "/"):
            raise ConfigError(f"a local folder can only be listed with the '/' delimiter, not {delimiter!r}")
        folder_key, _, start = prefix.rpartition("/")
        if folder_key:
            check_key(folder_key)
            folder_key += "/"
        if "\x00" in start or "\\" in start:
            raise UnsafeKeyError(f"unsafe prefix {prefix!r}: contains a NUL or a backslash")
        if not self.root.is_dir():
            self.counts.list += 1
            raise NotFoundError(f"folder {self.root} does not exist")
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        full: ListPage | None = None  # a full page, held until the next entry shows it is not the last
        pages = 0
        entries = folder_entries(
            os.path.join(self._root, folder_key), folder_key, start, bool(delimiter), start_after
        )
        for key, entry, is_prefix in entries:
            info = None if is_prefix else object_info(key, entry)
            if not is_prefix and info is None:
                continue
            if full is not None:
                self.counts.list += 1
                yield full
                full = None
            if info is None:
                prefixes.append(key)
            else:
                objects.append(info)
            if len(objects) + len(prefixes) >= self.page_size:
                pages += 1
                full, objects, prefixes = ListPage(objects=tuple(objects), prefixes=tuple(prefixes)), [], []
        if full is not None:
            self.counts.list += 1
            yield replace(full, last=True)
        elif objects or prefixes or pages == 0:
            self.counts.list += 1
            yield ListPage(objects=tuple(objects), prefixes=tuple(prefixes), last=True)

    async def get(self, key: str) -> Fetched:
        """The file's bytes, read synchronously: local reads are fast and a thread hop is not."""
        check_key(key)
        path = os.path.join(self._root, key)
        self.counts.get += 1
        try:
            _, etag, body = read_file(path, want_body=True)
        except OSError as error:
            raise self._os_error(error, "read", key) from None
        self.counts.bytes_read += len(body)
        return Fetched(key=key, etag=etag, body=body)

    async def get_file(self, key: str, path: Path) -> str:
        """Copy the file to `path` (a local copy is already a stream)."""
        check_key(key)
        source = os.path.join(self._root, key)
        self.counts.get += 1
        try:
            st, etag, _ = read_file(source, want_body=False)
            shutil.copyfile(source, path)
        except OSError as error:
            raise self._os_error(error, "read", key) from None
        self.counts.bytes_read += st.st_size
        return etag

    async def head(self, key: str) -> ObjectInfo | None:
        path = str(self._path(key))
        self.counts.head += 1
        try:
            st, etag, _ = read_file(path, want_body=False)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as error:
            raise self._os_error(error, "inspect", key) from None
        return ObjectInfo(key=key, size=st.st_size, etag=etag, last_modified_us=st.st_mtime_ns // 1000)

    # -- writing -----------------------------------------------------------------

    async def put(
        self,
        key: str,
        body: bytes,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write a staged temporary file (fsynced), then rename it over the key under the lock."""
        path = self._path(key)
        self.counts.put += 1
        try:
            temp = self._staging.write(body)
            try:
                etag = publish(
                    path, temp, where=self._where(key), if_none_match=if_none_match, if_match=if_match
                )
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as error:
            raise self._os_error(error, "write", key) from None
        self.counts.bytes_written += len(body)
        return etag

    async def put_file(self, key: str, path: Path) -> str:
        """Copy the file into staging (in a thread: it may be large), then rename it into place."""
        target = self._path(key)
        self.counts.put += 1
        try:
            temp, size = await asyncio.to_thread(self._staging.copy, Path(path))
        except OSError as error:
            raise StorageError(
                f"cannot copy {path} to {self._where(key)}: {error.strerror or error}"
            ) from None
        try:
            etag = publish(target, temp, where=self._where(key), if_none_match=False, if_match=None)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self.counts.bytes_written += size
        return etag

    async def delete(self, keys: list[str]) -> None:
        """Remove files (missing ones are fine) and folders left empty, as S3 has no empty folders."""
        paths = [(key, self._path(key)) for key in keys]  # refuse unsafe keys before deleting any
        for start in range(0, len(paths), DELETE_BATCH):
            self.counts.delete += 1
            for key, path in paths[start : start + DELETE_BATCH]:
                try:
                    remove_file(self.root, path)
                except OSError as error:
                    raise self._os_error(error, "delete", key) from None
