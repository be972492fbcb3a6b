"""An S3 server on loopback (moto) for `archiver replay`, `demo`, the tests and the benchmark.

moto's in-process mock does not reach aioboto3, so the archiver always talks to
moto over HTTP, exactly as it talks to S3. The server binds 127.0.0.1 on a free
port and is never reachable from outside the machine.

What moto 5.2.5 does, and what follows from it:

- The page size of ListObjects answers is `MOTO_S3_DEFAULT_MAX_KEYS`, read from the
  environment on every request (moto.settings.get_s3_default_max_keys), so it can be
  set for a running server. moto keeps buckets in process-wide state: threaded servers
  in one process share buckets, and `max_keys` is process-wide while one runs. A
  server in a child process (`running_moto_process`) has its own of both.
- PutObject honours If-None-Match: * and If-Match (412 PreconditionFailed). It checks
  and stores without a lock, but no double win showed in 24,000 racing requests.
- A request costs moto 2-5 ms of CPU under one GIL whatever the client's concurrency,
  so about 250 PUTs a second is all HTTP can give (20k files: 80 s or more). Hence
  `upload_tree` stores files straight into the backend of a server running in this
  process (20k files in a few seconds) and uses HTTP otherwise; and the child process
  server can be preloaded with folders before it starts listening.
- moto's dispatcher lists its own package folder (about 180 stat calls) on every
  request; the servers started here compute that list once.

The clients made here carry moto's dummy credentials explicitly; the process
environment is left alone apart from the page size above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import aioboto3
import boto3.session
from moto.server import ThreadedMotoServer

from archiver.errors import NotFoundError, StorageError
from archiver.storage.localfs import RESERVED
from archiver.storage.s3 import S3Store

MAX_KEYS_VARIABLE = "MOTO_S3_DEFAULT_MAX_KEYS"
REGION = "us-east-1"

MOTO_CREDENTIALS: dict[str, str] = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": REGION,
}
"""moto's dummy credentials, as session arguments (S3Store(credentials=...), boto3 Session(**...))."""

logger = logging.getLogger(__name__)

_IN_PROCESS: set[str] = set()
"""Endpoints of the servers running in this process, whose buckets `upload_tree` can fill directly."""


def moto_session() -> aioboto3.Session:
    """An aioboto3 session with moto's dummy credentials, independent of the environment."""
    return aioboto3.Session(**MOTO_CREDENTIALS)


def _prepare_moto() -> None:
    """Quiet werkzeug's access log (stderr belongs to the progress bar) and cache moto's module list."""
    logger = logging.getLogger("werkzeug")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    from moto import backends

    if not getattr(backends.list_of_moto_modules, "_archiver_cached", False):
        modules = tuple(backends.list_of_moto_modules())

        def cached_modules() -> Iterator[str]:
            return iter(modules)

        cached_modules._archiver_cached = True  # type: ignore[attr-defined]
        backends.list_of_moto_modules = cached_modules


@contextlib.contextmanager
def running_moto_server(max_keys: int | None = None) -> Iterator[str]:
    """Run moto in a thread of this process; yield its endpoint "http://127.0.0.1:PORT".

    `max_keys` sets the default page size of listings while the server runs.
    """
    _prepare_moto()
    previous = os.environ.get(MAX_KEYS_VARIABLE)
    if max_keys is not None:
        os.environ[MAX_KEYS_VARIABLE] = str(max_keys)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    endpoint = ""
    try:
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _IN_PROCESS.add(endpoint)
        logger.info("embedded S3 server (moto) listening on %s", endpoint)
        yield endpoint
    finally:
        _IN_PROCESS.discard(endpoint)
        server.stop()
        if max_keys is not None:
            if previous is None:
                os.environ.pop(MAX_KEYS_VARIABLE, None)
            else:
                os.environ[MAX_KEYS_VARIABLE] = previous


@contextlib.contextmanager
def running_moto_process(
    max_keys: int | None = None,
    *,
    preload: Mapping[str, Path] | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Run moto in a child process on a free port; yield its endpoint.

    A separate process keeps moto's work off this process's GIL, which is what a
    benchmark of the client side wants. `preload` maps bucket names to folders whose
    files the child stores before it starts listening (keys = relative paths), far
    faster than uploading them over HTTP. The child binds port 0 and reports the real
    port; it stops when this context ends, or when this process dies (its stdin closes).
    """
    command = [sys.executable, "-m", "archiver.local.moto_server"]
    if max_keys is not None:
        command += ["--max-keys", str(max_keys)]
    for bucket, root in (preload or {}).items():
        command += ["--load", f"{bucket}={Path(root).resolve()}"]
    package_parent = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, encoding="utf-8"
    )
    assert child.stdout is not None and child.stdin is not None
    stdout = child.stdout
    lines: list[str] = []
    # The first line is the endpoint; read it in a thread so a silent child cannot hang us.
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    try:
        reader.join(startup_timeout)
        endpoint = lines[0].strip() if lines else ""
        if not endpoint.startswith("http://127.0.0.1:"):
            raise StorageError(f"the moto server process did not start within {startup_timeout:g}s")
        yield endpoint
    finally:
        with contextlib.suppress(OSError):
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        child.stdout.close()


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create `bucket` on the moto server at `endpoint` (one that already exists is fine)."""
    client = boto3.session.Session(**MOTO_CREDENTIALS).client("s3", endpoint_url=endpoint)
    try:
        client.create_bucket(Bucket=bucket)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    finally:
        client.close()


def _tree_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative key, path) of every file under `root`, skipping the local store's temporary files."""
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(name for name in folders if not name.startswith(RESERVED))
        relative = os.path.relpath(folder, root)
        base = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in sorted(files):
            if not name.startswith(RESERVED):
                yield base + name, Path(folder, name)


def _store_in_process(bucket: str, root: Path, prefix: str) -> int:
    """Put a folder's files straight into this process's moto backend (what a PutObject does)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    stored = 0
    try:
        for key, path in _tree_files(root):
            backend.put_object(bucket, prefix + key, path.read_bytes())
            stored += 1
    except MissingBucket:
        raise NotFoundError(f"bucket {bucket} does not exist") from None
    return stored


def upload_tree(
    endpoint: str,
    bucket: str,
    root: Path,
    prefix: str = "",
    *,
    concurrency: int = 64,
    over_http: bool = False,
) -> int:
    """Upload every file under `root` to `bucket`, keyed `prefix` + its relative path; return the count.

    For a server started by `running_moto_server` in this process the files go
    straight into its backend, unless `over_http`; otherwise see `upload_tree_async`.
    Call this outside an event loop.
    """
    if endpoint in _IN_PROCESS and not over_http:
        return _store_in_process(bucket, Path(root), prefix)
    return asyncio.run(upload_tree_async(endpoint, bucket, root, prefix, concurrency=concurrency))


async def upload_tree_async(
    endpoint: str, bucket: str, root: Path, prefix: str = "", *, concurrency: int = 64
) -> int:
    """`upload_tree` over HTTP with aioboto3, at most `concurrency` uploads in flight.

    Large files go multipart through S3Store.put_file. Returns the number uploaded.
    """
    store = S3Store(
        bucket, prefix, credentials=MOTO_CREDENTIALS, endpoint_url=endpoint, max_connections=concurrency
    )
    files = _tree_files(Path(root))
    uploaded = 0

    async def worker() -> None:
        nonlocal uploaded
        # Workers pull from one shared iterator: no task per file, bounded concurrency.
        for key, path in files:
            await store.put_file(key, path)
            uploaded += 1

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except BaseExceptionGroup as errors:
        raise errors.exceptions[0] from None
    finally:
        await store.close()
    return uploaded


def main(argv: list[str] | None = None) -> None:
    """The child of `running_moto_process`: preload, serve, print the endpoint, stop at stdin EOF."""
    parser = argparse.ArgumentParser(prog="python -m archiver.local.moto_server")
    parser.add_argument("--max-keys", type=int, default=None)
    parser.add_argument("--load", action="append", default=[], metavar="BUCKET=DIR")
    args = parser.parse_args(argv)
    with running_moto_server(max_keys=args.max_keys) as endpoint:
        for spec in args.load:
            bucket, _, folder = spec.partition("=")
            create_bucket(endpoint, bucket)
            _store_in_process(bucket, Path(folder), "")
        print(endpoint, flush=True)
        sys.stdin.read()  # returns when the parent closes our stdin or exits


if __name__ == "__main__":
    main()
