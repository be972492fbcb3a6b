"""Atomic, conditional writes to a local folder: staging, folder locks, rename into place.

A write goes to a new file in the hidden staging folder `.archiver-tmp/` under the
root, is fsynced, and is then renamed over its key while the key's folder is locked
(`fcntl.flock`, exclusive, across processes), so If-None-Match / If-Match hold
against other writers in this and other processes on a local filesystem (not on
NFS), readers never see half a file, and a writer that dies leaves nothing in a
data folder. Staged files older than an hour are swept by the next store that
writes. POSIX only: this is the one module that imports `fcntl`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from archiver.errors import PreconditionFailedError, StorageError
from archiver.storage.localfs_files import MIB, RESERVED, current_stat, stat_tag

logger = logging.getLogger(__name__)

STAGING = f"{RESERVED}tmp"
"""Folder under the root where writes are staged before they are renamed into place."""
STALE_SECONDS = 3600
"""Staged files older than this belong to writers long gone."""

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 8


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive lock on a folder, across processes; released when the fd closes."""
    fd = os.open(folder, _DIR_FLAGS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Staging:
    """The hidden folder of one store root where files are written before they are published."""

    def __init__(self, root: Path) -> None:
        self.folder = root / STAGING
        self._swept = False

    def new_file(self) -> tuple[int, Path]:
        """A new, empty file open for writing: (fd, path).

        A writer that dies mid-write leaves its temporary file where no reader and no
        listing looks; stale ones are swept by the next store that writes.
        """
        staging = self.folder
        if not self._swept:
            self._sweep()
        for _ in range(_ATTEMPTS):
            temp = staging / f"{secrets.token_hex(8)}.tmp"
            try:
                staging.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                return os.open(temp, flags, 0o644), temp
            except (FileNotFoundError, FileExistsError):
                continue  # another writer removed the emptied staging folder meanwhile
        raise StorageError(f"cannot create a temporary file in {staging}", retryable=True)

    def write(self, body: bytes) -> Path:
        """Stage `body`, durable before visible: after a crash the key holds the old or the new bytes."""
        fd, temp = self.new_file()
        try:
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return temp

    def copy(self, source: Path) -> tuple[Path, int]:
        """Stage a copy of `source`; return it with its size."""
        fd, temp = self.new_file()
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

    def _sweep(self) -> None:
        """Remove temporary files older than STALE_SECONDS: their writers are long gone."""
        self._swept = True
        cutoff = time.time() - STALE_SECONDS
        swept = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        swept += 1
        if swept:
            logger.info("removed %d stale temporary files from %s", swept, self.folder)


def publish(path: Path, temp: Path, *, where: str, if_none_match: bool, if_match: str | None) -> str:
    """Check the condition and rename `temp` to `path`, atomically with respect to other writers.

    The new file's mtime is set strictly above the replaced one's, so its ETag differs
    even when both writes fall within one tick of the filesystem clock. `where` names
    the key in messages. Returns the new ETag.
    """
    for _ in range(_ATTEMPTS):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            etag = _replace_locked(path, temp, where, if_none_match, if_match)
        except FileNotFoundError:
            if not os.path.exists(temp):
                raise
            continue  # a delete removed the emptied folder between mkdir and lock
        with contextlib.suppress(OSError):
            temp.parent.rmdir()  # the staging folder, once no write is in flight
        return etag
    raise StorageError(f"cannot write {where}: its folder keeps disappearing", retryable=True)


def _replace_locked(path: Path, temp: Path, where: str, if_none_match: bool, if_match: str | None) -> str:
    with folder_lock(path.parent):
        current = current_stat(str(path))
        if if_none_match and (current is not None or os.path.lexists(path)):
            raise PreconditionFailedError(f"cannot write {where}: it already exists")
        if if_match is not None:
            if current is None:
                raise PreconditionFailedError(f"cannot write {where}: it no longer exists")
            if stat_tag(current) != if_match.strip('"'):
                raise PreconditionFailedError(f"cannot write {where}: another writer changed it first")
        if current is not None:
            fresh = os.stat(temp)
            if fresh.st_mtime_ns <= current.st_mtime_ns:
                later = current.st_mtime_ns + 1
                os.utime(temp, ns=(later, later))
        os.replace(temp, path)
        return stat_tag(os.stat(path))


def remove_file(root: Path, path: Path) -> bool:
    """Delete `path` under its folder's lock, then the folders it leaves empty up to `root`.

    False if there was nothing to delete.
    """
    try:
        with folder_lock(path.parent):
            os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    folder = path.parent
    while folder != root:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True
