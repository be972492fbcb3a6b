"""The object store on a local directory, so the same pipeline runs on a folder.

It behaves like S3 where the archiver can tell: listings come in key order, page by
page, with common prefixes for a delimiter; writes are atomic (a temporary file in
the hidden staging folder `.archiver-tmp/` under the root, fsynced, then renamed into
place), so readers never see half a file and a writer that dies leaves nothing in a
data folder; and conditional writes hold across processes. Staged files older than
an hour are swept by the next store that writes.

ETags are opaque tags built from inode, size and modification time
(`"<ino>-<size>-<mtime_ns>"`, hex), so listing never reads a file: `list_pages`,
`head` and `get` all derive the tag from the same stat, and `get` returns the ETag
`list_pages` showed for the same version. A rewrite always gets a new tag: writes
go to a new file renamed into place (a new inode), and every write through this
store sets the new file's mtime strictly above the one it replaces, so two
same-size writes within one kernel clock tick still differ (which If-Match relies on).

Conditions. Every write and delete takes an exclusive `fcntl.flock` on the key's
folder for its check-and-rename step only (the data is written before the lock),
which makes If-None-Match / If-Match atomic against other writers in this and in
other processes on a local filesystem (not on NFS). POSIX only.

Names starting with ".archiver-" are reserved for the store: listings skip them and
keys may not use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from archiver.errors import (
    AccessDeniedError,
    ConfigError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    UnsafeKeyError,
)
from archiver.storage.store import Fetched, ListPage, ObjectInfo, RequestCounts

MIB = 1024 * 1024
RESERVED = ".archiver-"
STAGING = f"{RESERVED}tmp"
"""Folder under the root where writes are staged before they are renamed into place."""
STALE_SECONDS = 3600
"""Prefix of temporary file names; never a key segment."""
DELETE_BATCH = 1000
"""Keys per counted delete request, as S3's DeleteObjects."""

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _stat_tag(st: os.stat_result) -> str:
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


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
        self._swept = False

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

    def _read(self, path: str, *, want_body: bool) -> tuple[os.stat_result, str, bytes]:
        """Stat, ETag and (when asked) the body, all from one open file."""
        fd = os.open(path, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "not a file", path)
            if not want_body:
                return st, _stat_tag(st), b""
            body = os.read(fd, st.st_size + 1)
            if len(body) != st.st_size:  # grew or shrank meanwhile, or beyond one read(): read to the end
                parts = [body]
                while chunk := os.read(fd, 8 * MIB):
                    parts.append(chunk)
                body = b"".join(parts)
            return st, _stat_tag(st), body
        finally:
            os.close(fd)

    @staticmethod
    def _info(key: str, entry: os.DirEntry[str]) -> ObjectInfo | None:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            return None  # deleted while listing
        if not stat.S_ISREG(st.st_mode):
            return None  # a symlink or a special file: not an object
        modified_us = st.st_mtime_ns // 1000
        return ObjectInfo(key=key, size=st.st_size, etag=_stat_tag(st), last_modified_us=modified_us)

    def _entries(
        self, folder: str, folder_key: str, start: str, delimiter: bool, after: str | None
    ) -> Iterator[tuple[str, os.DirEntry[str], bool]]:
        """(key, entry, is_prefix) under `folder` in S3 key order: names starting with `start`,
        keys and prefixes sorting after `after` (sub-folders wholly before it are not entered)."""
        try:
            with os.scandir(folder) as scan:
                entries = [
                    (entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name, entry)
                    for entry in scan
                    if entry.name.startswith(start) and not entry.name.startswith(RESERVED)
                ]
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sorting folders as "name/" puts "a-b" before "a/x", as S3 orders the full keys.
        entries.sort(key=lambda item: item[0])
        for name, entry in entries:
            key = folder_key + name
            # Keys inside a folder that sorts first can still sort after `after` if it lies inside.
            if (
                after is not None
                and key <= after
                and (delimiter or not name.endswith("/") or not after.startswith(key))
            ):
                continue
            if not name.endswith("/"):
                yield key, entry, False
            elif delimiter:
                yield key, entry, True
            else:
                inside = after if after is not None and after.startswith(key) else None
                yield from self._entries(entry.path, key, "", False, inside)

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
        pages = 0
        entries = self._entries(
            os.path.join(self._root, folder_key), folder_key, start, bool(delimiter), start_after
        )
        for key, entry, is_prefix in entries:
            if is_prefix:
                prefixes.append(key)
            else:
                info = self._info(key, entry)
                if info is None:
                    continue
                objects.append(info)
            if len(objects) + len(prefixes) >= self.page_size:
                self.counts.list += 1
                pages += 1
                yield ListPage(objects=tuple(objects), prefixes=tuple(prefixes))
                objects, prefixes = [], []
        if objects or prefixes or pages == 0:
            self.counts.list += 1
            yield ListPage(objects=tuple(objects), prefixes=tuple(prefixes))

    async def get(self, key: str) -> Fetched:
        """The file's bytes, read synchronously: local reads are fast and a thread hop is not."""
        check_key(key)
        path = os.path.join(self._root, key)
        self.counts.get += 1
        try:
            _, etag, body = self._read(path, want_body=True)
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
            st, etag, _ = self._read(source, want_body=False)
            shutil.copyfile(source, path)
        except OSError as error:
            raise self._os_error(error, "read", key) from None
        self.counts.bytes_read += st.st_size
        return etag

    async def head(self, key: str) -> ObjectInfo | None:
        path = str(self._path(key))
        self.counts.head += 1
        try:
            st, etag, _ = self._read(path, want_body=False)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as error:
            raise self._os_error(error, "inspect", key) from None
        return ObjectInfo(key=key, size=st.st_size, etag=etag, last_modified_us=st.st_mtime_ns // 1000)

    # -- writing -----------------------------------------------------------------

    def _current_stat(self, path: Path) -> os.stat_result | None:
        try:
            return self._read(str(path), want_body=False)[0]
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    @contextlib.contextmanager
    def _folder_lock(self, folder: Path) -> Iterator[None]:
        """Exclusive lock on a folder, across processes; released when the fd closes."""
        fd = os.open(folder, _DIR_FLAGS)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _temp_file(self, folder: Path) -> tuple[int, Path]:
        """A new file in the hidden staging folder, never in a data folder.

        A writer that dies mid-write leaves its temporary file where no reader and no
        listing looks; stale ones are swept by the next store that writes.
        """
        del folder  # staging is one folder per root, so a rename places the file atomically
        staging = self.root / STAGING
        if not self._swept:
            self._sweep(staging)
        for _ in range(8):
            temp = staging / f"{secrets.token_hex(8)}.tmp"
            try:
                staging.mkdir(parents=True, exist_ok=True)
                return os.open(
                    temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644
                ), temp
            except (FileNotFoundError, FileExistsError):
                continue  # another writer removed the emptied staging folder meanwhile
        raise StorageError(f"cannot create a temporary file in {staging}", retryable=True)

    def _sweep(self, staging: Path) -> None:
        """Remove temporary files older than STALE_SECONDS: their writers are long gone."""
        self._swept = True
        cutoff = time.time() - STALE_SECONDS
        with contextlib.suppress(FileNotFoundError), os.scandir(staging) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)

    def _publish(self, key: str, path: Path, temp: Path, if_none_match: bool, if_match: str | None) -> str:
        """Check the condition and rename into place, atomically with respect to other writers.

        The new file's mtime is set strictly above the replaced one's, so its ETag differs
        even when both writes fall within one tick of the filesystem clock. Returns the ETag.
        """
        for _ in range(8):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                etag = self._replace_locked(key, path, temp, if_none_match, if_match)
            except FileNotFoundError:
                if not os.path.exists(temp):
                    raise
                continue  # a delete removed the emptied folder between mkdir and lock
            with contextlib.suppress(OSError):
                temp.parent.rmdir()  # the staging folder, once no write is in flight
            return etag
        raise StorageError(f"cannot write {self._where(key)}: its folder keeps disappearing", retryable=True)

    def _replace_locked(
        self, key: str, path: Path, temp: Path, if_none_match: bool, if_match: str | None
    ) -> str:
        with self._folder_lock(path.parent):
            current = self._current_stat(path)
            if if_none_match and (current is not None or os.path.lexists(path)):
                raise PreconditionFailedError(f"cannot write {self._where(key)}: it already exists")
            if if_match is not None:
                if current is None:
                    raise PreconditionFailedError(f"cannot write {self._where(key)}: it no longer exists")
                if _stat_tag(current) != if_match.strip('"'):
                    raise PreconditionFailedError(
                        f"cannot write {self._where(key)}: another writer changed it first"
                    )
            if current is not None:
                fresh = os.stat(temp)
                if fresh.st_mtime_ns <= current.st_mtime_ns:
                    later = current.st_mtime_ns + 1
                    os.utime(temp, ns=(later, later))
            os.replace(temp, path)
            return _stat_tag(os.stat(path))

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
        temp: Path | None = None
        try:
            fd, temp = self._temp_file(path.parent)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                # Durable before visible: after a crash the key holds the old or the new bytes.
                os.fsync(fd)
            finally:
                os.close(fd)
            etag = self._publish(key, path, temp, if_none_match, if_match)
            temp = None
        except OSError as error:
            raise self._os_error(error, "write", key) from None
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        self.counts.bytes_written += len(body)
        return etag

    def _copy_in(self, source: Path, folder: Path) -> tuple[Path, int]:
        """Copy `source` to a hidden file in `folder`; return it with its size."""
        fd, temp = self._temp_file(folder)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 8 * MIB)
                out.flush()
                os.fsync(out.fileno())
                size = os.fstat(out.fileno()).st_size
            return temp, size
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    async def put_file(self, key: str, path: Path) -> str:
        """Copy the file next to its destination (in a thread: it may be large), then rename."""
        target = self._path(key)
        self.counts.put += 1
        try:
            temp, size = await asyncio.to_thread(self._copy_in, Path(path), target.parent)
        except OSError as error:
            raise StorageError(
                f"cannot copy {path} to {self._where(key)}: {error.strerror or error}"
            ) from None
        try:
            etag = self._publish(key, target, temp, False, None)
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
                    with self._folder_lock(path.parent):
                        os.unlink(path)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except OSError as error:
                    raise self._os_error(error, "delete", key) from None
                folder = path.parent
                while folder != self.root:
                    try:
                        folder.rmdir()
                    except OSError:
                        break
                    folder = folder.parent
