"""The engine's worker processes: a fresh interpreter each, one pipe to its parent.

Parse workers and the shard processes of a multi-day `compact` start the same way:
`sys.executable -c BOOTSTRAP` through `subprocess` (fork and exec at once), never one
of `multiprocessing`'s start methods, because each of those breaks somewhere the
handlers run:

- `spawn` and `forkserver` run the caller's `__main__` again in the child (as
  `__mp_main__`), and a `__main__` the engine does not own (AWS Lambda's runtime, a
  script without a `__name__` guard) may fail or act twice when imported again;
- `fork` copies a process whose other threads (the event loop's executor, aiobotocore,
  pyarrow's pools) may hold locks the child would then wait on forever;
- their pools and queues need POSIX semaphores, which need `/dev/shm`, which Lambda
  lacks.

The child imports only `archiver` modules, on the parent's `sys.path` (the first
message), then calls the target function named by its module with pickled arguments.
Parent and child talk over one `multiprocessing.Pipe` (a socket pair): no semaphore,
queue or shared memory. A child ignores Ctrl-C (its parent handles it and closes the
pipe) and exits when its parent is gone. An embedding program needs nothing: no
`__main__` guard, no start method; `sys.executable` must be a Python that can import
`archiver` from the parent's `sys.path`, or starting fails with one `WorkerStartError`.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from archiver.errors import WorkerProcessDiedError, WorkerStartError

READY_TIMEOUT_S = 120.0
"""How long a child may take to start and import its target before the start counts as failed."""

BOOTSTRAP = """\
import sys
from multiprocessing.connection import Connection
pipe = Connection(int(sys.argv[1]))
sys.path[:] = pipe.recv()
try:
    from archiver.engine.children import serve
except BaseException as error:
    pipe.send(("failed", f"{type(error).__name__}: {error}"))
    raise SystemExit(1)
serve(pipe, int(sys.argv[2]))
"""
"""What a child runs: the only code of it that is not an `archiver` module."""

SETTING_HINT = "ARCHIVER_PARSE_WORKERS=1 keeps everything in one process"


class ChildProcess:
    """One started child and the parent's end of its pipe (the process API of `multiprocessing`'s)."""

    def __init__(self, popen: subprocess.Popen[bytes], pipe: Connection, what: str) -> None:
        self.popen = popen
        self.pipe = pipe
        self.what = what

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        """None while it runs; the exit status, or minus the signal that killed it."""
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        self.popen.kill()  # a no-op once the child has been reaped

    def join(self, timeout: float | None = None) -> None:
        self.popen.wait(timeout)

    def describe_exit(self) -> str:
        code = self.exitcode
        return f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"

    def ending(self) -> str:
        """How the child ended, once it has (call it when its pipe closed: it is on its way out)."""
        try:
            self.popen.wait(5.0)
        except subprocess.TimeoutExpired:
            return "its pipe closed"
        return self.describe_exit()

    def close(self, timeout: float = 5.0) -> None:
        """Close the pipe (an idle child then exits on its own), wait for the child, kill it if it lingers."""
        self.pipe.close()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    async def ready(self) -> None:
        """Wait until the child has imported its target.

        A child that cannot start is a WorkerStartError; one killed by a signal meanwhile
        (out of memory, SIGKILL) is a WorkerProcessDiedError, as it would be later.
        """
        try:
            kind, detail = await asyncio.wait_for(receive(self.pipe), READY_TIMEOUT_S)
        except TimeoutError:
            raise WorkerStartError(
                f"could not start {self.what}: not ready after {READY_TIMEOUT_S:.0f}s ({SETTING_HINT})"
            ) from None
        except (EOFError, OSError):
            how = await asyncio.to_thread(self.ending)
            if self.exitcode is not None and self.exitcode < 0:  # killed from outside, as a worker may be
                raise WorkerProcessDiedError(f"one of {self.what} died ({how}) while starting") from None
            raise WorkerStartError(
                f"could not start {self.what}: {sys.executable} ended ({how}) before it was ready "
                f"({SETTING_HINT})"
            ) from None
        if kind != "ready":
            raise WorkerStartError(f"could not start {self.what}: {detail} ({SETTING_HINT})")


def start_child(target: Callable[..., None], *args: Any, what: str) -> ChildProcess:
    """Start `target(pipe, *args)` in a fresh interpreter; await `ready()` before relying on it.

    `target` must be a module-level function of an `archiver` module. A child that
    cannot be started at all (no such executable, no processes left) is a
    WorkerStartError here; one that starts but cannot import is one from `ready()`.
    """
    if "." in target.__qualname__:
        raise ValueError(f"a child's target must be a module-level function, not {target.__qualname__}")
    parent_end, child_end = multiprocessing.Pipe(duplex=True)
    handle = child_end.fileno()
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP, str(handle), str(os.getpid())],
            pass_fds=(handle,),
            stdin=subprocess.DEVNULL,
        )
    except OSError as error:
        parent_end.close()
        raise WorkerStartError(f"could not start {what}: {error} ({SETTING_HINT})") from None
    finally:
        child_end.close()
    try:
        parent_end.send(list(sys.path))
        parent_end.send((target.__module__, target.__qualname__, args))
    except OSError:
        pass  # the child is gone already: ready() says how it ended
    return ChildProcess(popen, parent_end, what)


async def all_ready(children: Sequence[ChildProcess]) -> None:
    """Wait until every child is ready; at the first that cannot start (or a cancel), stop waiting."""
    waits = [asyncio.ensure_future(child.ready()) for child in children]
    try:
        await asyncio.gather(*waits)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


def serve(pipe: Connection, parent_pid: int) -> None:
    """In the child, after the bootstrap: run the target the parent names, once it says it is ready."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with(parent_pid)
    try:
        module, name, args = pipe.recv()
        target = getattr(importlib.import_module(module), name)
    except Exception as error:
        pipe.send(("failed", f"{type(error).__name__}: {error}"))
        raise SystemExit(1) from None
    pipe.send(("ready", None))
    target(pipe, *args)


async def receive(pipe: Connection) -> Any:
    """The next message on `pipe`, awaited on the event loop (EOFError: the other end is gone)."""
    if not pipe.poll():
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        handle = pipe.fileno()
        loop.add_reader(handle, _wake, readable)
        try:
            await readable
        finally:
            loop.remove_reader(handle)
    return pipe.recv()


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)


def exit_with(parent_pid: int) -> None:
    """In a child: exit as soon as the parent is gone, so a killed run leaves no worker behind."""
    watcher = threading.Thread(target=_exit_when_gone, args=(parent_pid,), daemon=True)
    watcher.start()


def _exit_when_gone(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while _alive(pid):
            time.sleep(1.0)
    else:
        select.select([handle], [], [])
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
