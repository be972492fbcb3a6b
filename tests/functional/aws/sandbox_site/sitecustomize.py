"""Imported by every Python process started in the Lambda sandbox (its folder is on PYTHONPATH).

It records, through an audit hook, what the process attempts that the sandbox test
must see even where the code swallows the failure: every write outside /tmp (opening
for writing, creating, renaming, removing; Python's own bytecode cache aside: it
skips it silently on a read-only disk by design, as it does in Lambda) and every
process started. One JSON line each, appended to the file named by
ARCHIVER_SANDBOX_AUDIT. Standard library only: it runs before anything is imported.
"""

from __future__ import annotations

import json
import os
import sys

_LOG = os.environ.get("ARCHIVER_SANDBOX_AUDIT")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {
    "os.mkdir": 1,
    "os.rename": 2,
    "os.remove": 1,
    "os.rmdir": 1,
    "os.truncate": 1,
    "os.link": 2,
    "os.symlink": 2,
    "os.chmod": 1,
    "os.chown": 1,
    "os.utime": 1,
    "shutil.rmtree": 1,
}
_busy = False
_READ_ONLY = tuple(
    os.path.abspath(place)
    for place in (os.environ.get("ARCHIVER_SANDBOX_REPO"), os.environ.get("ARCHIVER_SANDBOX_PREFIX"))
    if place
)


def _outside_tmp(path: object) -> str | None:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return None  # a file descriptor: opened earlier, and checked then
    full = os.path.abspath(path)
    if "/__pycache__/" in full:
        return None  # Python tries to cache bytecode and quietly goes without where it cannot
    if any(full == place or full.startswith(place + "/") for place in _READ_ONLY):
        return full  # the checkout or the virtualenv, read-only in Lambda even where they sit under /tmp
    if full == "/tmp" or full.startswith("/tmp/") or full in ("/dev/null", "/dev/stdout", "/dev/stderr"):
        return None
    return full


def _writes(event: str, args: tuple[object, ...]) -> list[str]:
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str):
            writing = any(c in mode for c in "wax+")
        else:
            writing = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        candidates = [path] if writing else []
    else:
        candidates = list(args[: _PATH_EVENTS[event]])
    return [found for path in candidates if (found := _outside_tmp(path)) is not None]


def _record(entry: dict[str, object]) -> None:
    assert _LOG is not None
    handle = os.open(_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(handle, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(handle)


def _hook(event: str, args: tuple[object, ...]) -> None:
    global _busy
    if _busy or not (event == "open" or event == "subprocess.Popen" or event in _PATH_EVENTS):
        return
    _busy = True
    try:
        if event == "subprocess.Popen":
            command = args[1]
            started = [str(arg) for arg in command] if isinstance(command, list | tuple) else [str(command)]
            _record({"pid": os.getpid(), "started": started})
        else:
            for path in _writes(event, args):
                _record({"pid": os.getpid(), "write": event, "path": path})
    finally:
        _busy = False


if _LOG:
    sys.addaudithook(_hook)
