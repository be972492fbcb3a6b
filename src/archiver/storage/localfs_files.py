"""Files and folders in S3's terms: ETags from one stat, listing entries in key order.

ETags are opaque tags built from inode, size and modification time
(`"<ino>-<size>-<mtime_ns>"`, hex), so listing never reads a file, and `get`,
`head` and a listing all derive the tag of one version from the same stat.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator

from archiver.storage.store import ObjectInfo

MIB = 1024 * 1024
RESERVED = ".archiver-"
"""Names starting with this are the store's own: listings skip them and keys may not use them."""

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def stat_tag(st: os.stat_result) -> str:
    """The ETag of the file version `st` describes."""
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


def read_file(path: str, *, want_body: bool) -> tuple[os.stat_result, str, bytes]:
    """Stat, ETag and (when asked) the body, all from one open file."""
    fd = os.open(path, _READ_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a file", path)
        if not want_body:
            return st, stat_tag(st), b""
        body = os.read(fd, st.st_size + 1)
        if len(body) != st.st_size:  # grew or shrank meanwhile, or beyond one read(): read to the end
            parts = [body]
            while chunk := os.read(fd, 8 * MIB):
                parts.append(chunk)
            body = b"".join(parts)
        return st, stat_tag(st), body
    finally:
        os.close(fd)


def current_stat(path: str) -> os.stat_result | None:
    """The stat of the file at `path`, or None if there is none."""
    try:
        return read_file(path, want_body=False)[0]
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def object_info(key: str, entry: os.DirEntry[str]) -> ObjectInfo | None:
    """A listed file as an object; None for anything that is not a regular file (any more)."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None  # deleted while listing
    if not stat.S_ISREG(st.st_mode):
        return None  # a symlink or a special file: not an object
    modified_us = st.st_mtime_ns // 1000
    return ObjectInfo(key=key, size=st.st_size, etag=stat_tag(st), last_modified_us=modified_us)


def folder_entries(
    folder: str, folder_key: str, start: str, delimiter: bool, after: str | None
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
            yield from folder_entries(entry.path, key, "", False, inside)
