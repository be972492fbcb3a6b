"""Fault injection for the exactly-once tests: a store that dies at call N, and a flaky S3 proxy.

`CrashingStore` wraps a real store (LocalStore or S3Store), numbers every storage
call it passes on (each listing page, get, head, put, put_file, delete) and raises
`SimulatedCrash` right before call number `crash_at`: the state the real store is
left in is exactly the state a process killed between two storage calls leaves.
`SimulatedCrash` is a BaseException, so no `except Exception` in the code under
test can swallow it. A `before` hook sees every call first, for tests that need to
interleave two runs at a precise point.

`FaultProxy` is a small HTTP proxy on 127.0.0.1 in front of the moto server. A
seeded RNG picks a fraction of the requests and answers them with a fault instead
of forwarding them (503 SlowDown, 500 InternalError, a connection reset, or for an
object read a body cut short); every other request goes to moto with its method,
path, headers and body unchanged, and moto's status, headers and body come back.
A `rule` can force a fault on chosen requests, including "lost": the request
reaches moto and takes effect, and then the connection is reset before the
answer, as when a network path drops after the server has acted.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from archiver.storage.store import Fetched, ListPage, ObjectInfo, ObjectStore, RequestCounts

# --------------------------------------------------------------------------- crashing store


class SimulatedCrash(BaseException):
    """The process "died" right before a storage call; nothing in the pipeline may catch it."""


@dataclass(frozen=True, slots=True)
class Call:
    """One storage call as the wrapper saw it: its number in the run, its kind and key."""

    number: int
    kind: str  # "list", "get", "head", "put", "put_file", "delete"
    key: str


CallHook = Callable[[Call], None]


class CrashingStore:
    """An ObjectStore that passes calls to `inner`, counting them, and crashes before call `crash_at`.

    With `crash_at=None` it only counts (and records `calls`), which is how a test
    learns how many calls a clean run makes. After the crash every further call
    (from tasks of the run still in flight) fails the same way: a dead process
    makes no more calls. A listing page counts once it has been
    read from the inner store and crashes before it is handed over: for a read,
    that is the same as dying before the call.
    """

    def __init__(
        self, inner: ObjectStore, crash_at: int | None = None, *, before: CallHook | None = None
    ) -> None:
        self.inner = inner
        self.sequential_reads = inner.sequential_reads
        self.crash_at = crash_at
        self.before = before
        self.calls: list[Call] = []
        self.crashed: Call | None = None

    @property
    def counts(self) -> RequestCounts:
        return self.inner.counts

    @property
    def url(self) -> str:
        return self.inner.url

    def _call(self, kind: str, key: str) -> None:
        call = Call(len(self.calls), kind, key)
        self.calls.append(call)
        if self.before is not None:
            self.before(call)
        if self.crashed is not None:
            raise SimulatedCrash(f"dead since call {self.crashed.number}, no call {kind} {key}")
        if self.crash_at is not None and call.number == self.crash_at:
            self.crashed = call
            raise SimulatedCrash(f"crash before call {call.number}: {kind} {key}")

    async def list_pages(
        self, prefix: str, *, delimiter: str | None = None, start_after: str | None = None
    ) -> AsyncIterator[ListPage]:
        pages = self.inner.list_pages(prefix, delimiter=delimiter, start_after=start_after)
        try:
            async for page in pages:
                self._call("list", prefix)
                yield page
        finally:
            aclose = getattr(pages, "aclose", None)
            if aclose is not None:
                await aclose()

    async def get(self, key: str) -> Fetched:
        self._call("get", key)
        return await self.inner.get(key)

    async def get_file(self, key: str, path: Path) -> str:
        self._call("get", key)
        return await self.inner.get_file(key, path)

    async def head(self, key: str) -> ObjectInfo | None:
        self._call("head", key)
        return await self.inner.head(key)

    async def put(
        self, key: str, body: bytes, *, if_none_match: bool = False, if_match: str | None = None
    ) -> str:
        self._call("put", key)
        return await self.inner.put(key, body, if_none_match=if_none_match, if_match=if_match)

    async def put_file(self, key: str, path: Path) -> str:
        self._call("put_file", key)
        return await self.inner.put_file(key, path)

    async def delete(self, keys: list[str]) -> None:
        self._call("delete", ",".join(keys))
        await self.inner.delete(keys)

    async def close(self) -> None:
        await self.inner.close()


# --------------------------------------------------------------------------- faulty S3 proxy

SLOWDOWN = "slowdown"  # 503 SlowDown, S3's throttling answer
INTERNAL = "internal"  # 500 InternalError
RESET = "reset"  # the connection is reset before the request reaches the server
TRUNCATED = "truncated"  # an object read answers 200 with its body cut short
LOST = "lost"  # forwarded and acted on, then the connection is reset before the answer
RANDOM_FAULTS = (SLOWDOWN, INTERNAL, RESET, TRUNCATED)

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message>"
    "<RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>"
)
_ERRORS = {
    SLOWDOWN: (503, "SlowDown", "Please reduce your request rate."),
    INTERNAL: (500, "InternalError", "We encountered an internal error. Please try again."),
}
# Headers that belong to one hop, not to the request or answer (RFC 9110 7.6.1).
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)


@dataclass(frozen=True, slots=True)
class Request:
    """What a rule sees of a request: method, path (decoded, without the query), query, headers."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names

    @property
    def is_object_read(self) -> bool:
        """A GetObject: GET on bucket/key (a listing is a GET on the bucket alone)."""
        return self.method == "GET" and self.path.strip("/").count("/") >= 1


Rule = Callable[[Request], str | None]


@dataclass(slots=True)
class FaultLog:
    """Requests seen and faults injected, by kind (shared across the proxy's threads)."""

    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, fault: str | None) -> None:
        with self.lock:
            self.requests += 1
            if fault is not None:
                self.faults[fault] = self.faults.get(fault, 0) + 1


class FaultProxy:
    """A threaded HTTP proxy to `upstream` ("http://127.0.0.1:PORT") that injects faults.

    `rate` is the fraction of requests that get a random fault from `faults`, picked
    by `random.Random(seed)`; `rule`, if given, is asked first and may force a fault
    (or "pass" to forward a request untouched). Use as a context manager; `endpoint`
    is where clients connect.
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.1,
        seed: int = 0,
        faults: tuple[str, ...] = RANDOM_FAULTS,
        rule: Rule | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname is not None and parts.port is not None
        self.upstream = (parts.hostname, parts.port)
        self.rate = rate
        self.faults = faults
        self.rule = rule
        self.log = FaultLog()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def choose(self, request: Request) -> str | None:
        """The fault for this request, or None to forward it."""
        if self.rule is not None:
            forced = self.rule(request)
            if forced == "pass":
                return None
            if forced is not None:
                return forced
        with self._rng_lock:
            hit = self._rng.random() < self.rate
            fault = self._rng.choice(self.faults) if hit and self.faults else None
        if fault == TRUNCATED and not request.is_object_read:
            fault = RESET  # only an object body can be cut short meaningfully
        return fault


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Silence the per-request access log."""

        def do_GET(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _reset(self) -> None:
            """Abort the connection with a TCP RST, as a dropped path or a crashed front end does."""
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

        def _handle(self) -> None:
            body = self._read_body()
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=unquote(parts.path),
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
            )
            fault = proxy.choose(request)
            proxy.log.count(fault)
            if fault == RESET:
                self._reset()
                return
            if fault in _ERRORS:
                status, code, message = _ERRORS[fault]
                payload = _ERROR_BODY.format(code=code, message=message).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amz-request-id", "FAULTPROXY")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            status, reason, headers, answer = self._forward(body)
            if fault == LOST:
                self._reset()
                return
            self.send_response_only(status, reason)  # moto's own Date and Server headers follow
            for name, value in headers:
                if name.lower() in _HOP_HEADERS or name.lower() == "content-length":
                    continue
                self.send_header(name, value)
            declared = dict((name.lower(), value) for name, value in headers).get("content-length")
            if self.command == "HEAD":
                self.send_header("Content-Length", declared or "0")
            else:
                self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if fault == TRUNCATED and status == 200 and len(answer) > 1:
                self.wfile.write(answer[: len(answer) // 2])
                self.wfile.flush()
                self._reset()
                return
            self.wfile.write(answer)

        def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in _HOP_HEADERS and name.lower() not in ("content-length", "expect")
                }
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers.items():
                    connection.putheader(name, value)
                connection.endheaders(body if body else None)
                response = connection.getresponse()
                answer = response.read()
                return response.status, response.reason, response.getheaders(), answer
            finally:
                connection.close()

    return Handler


def every_request(fault: str) -> Rule:
    """A rule that forces `fault` on every request (for a store that must fail)."""
    return lambda request: fault
