"""What a Lambda execution environment keeps between invocations: the deployment, an event loop, the stores.

Creating an S3 client costs more than archiving a small batch (botocore loads its
service models and endpoint rules, then opens TLS connections), so the stores are
opened once per execution environment, on the first invocation, and reused by every
later one on the same event loop; a store's request counts start from zero for every
invocation, so each report counts only its own requests. The deployment is read
from the environment on every invocation (a few dictionary lookups); when it
changes, as between tests, the old stores are closed and new ones opened.

Lambda runs one invocation at a time per execution environment. The cache is per
thread, so tests that run handlers in threads get one environment each, as on Lambda.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from archiver.aws.deployment import Deployment, deployment_from_env
from archiver.engine import api
from archiver.storage.store import ObjectStore, RequestCounts

T = TypeVar("T")
Work = Callable[[ObjectStore, ObjectStore], Awaitable[T]]

_log = logging.getLogger(__name__)


class Runtime:
    """A deployment's stores on one long-lived event loop."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self._runner = quiet_runner()
        self._stack: AsyncExitStack | None = None
        self._stores: tuple[ObjectStore, ObjectStore] | None = None

    def run(self, work: Work[T]) -> T:
        """Run `work(source, dest)` to completion on this runtime's loop."""
        return self._runner.run(self._with_stores(work))

    async def _with_stores(self, work: Work[T]) -> T:
        if self._stores is None:
            stack = AsyncExitStack()
            source_url, dest_url = self.deployment.source.url, self.deployment.dest.url
            try:
                source, dest = await stack.enter_async_context(
                    api.open_stores(source_url, dest_url, self.deployment.settings)
                )
            except BaseException:
                await stack.aclose()
                raise
            assert dest is not None
            self._stack, self._stores = stack, (source, dest)
        source, dest = self._stores
        for store in (source, dest):
            store.counts = RequestCounts()
        return await work(source, dest)

    def close(self) -> None:
        stack, self._stack, self._stores = self._stack, None, None
        try:
            if stack is not None:
                self._runner.run(stack.aclose())
        finally:
            self._runner.close()


_local = threading.local()


def current_runtime(environ: Mapping[str, str] | None = None) -> Runtime:
    """This thread's runtime for the deployment the environment describes (made on first use)."""
    deployment = deployment_from_env(environ)
    runtime: Runtime | None = getattr(_local, "runtime", None)
    if runtime is not None and runtime.deployment == deployment:
        return runtime
    if runtime is not None:
        runtime.close()
    runtime = Runtime(deployment)
    _local.runtime = runtime
    return runtime


def close_runtime() -> None:
    """Close this thread's runtime, if any (at exit, and for tests)."""
    runtime: Runtime | None = getattr(_local, "runtime", None)
    _local.runtime = None
    if runtime is not None:
        runtime.close()


atexit.register(close_runtime)


def quiet_runner() -> asyncio.Runner:
    """An `asyncio.Runner` whose loop drops the errors of connections orphaned after their answer."""
    runner = asyncio.Runner()
    runner.get_loop().set_exception_handler(_quiet_orphaned_connection_errors)
    return runner


def _quiet_orphaned_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop connection errors of body-writing tasks whose request already failed (see cli.run_quietly)."""
    error = context.get("exception")
    if context.get("message") == "Task exception was never retrieved" and isinstance(error, ConnectionError):
        _log.debug("dropped an orphaned connection error: %s", type(error).__name__)
        return
    import aiohttp

    if context.get("message") == "Task exception was never retrieved" and isinstance(
        error, aiohttp.ClientConnectionError
    ):
        return
    loop.default_exception_handler(context)
