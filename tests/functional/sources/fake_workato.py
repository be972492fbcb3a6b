"""A loopback fake of Workato's activity audit log API, as its documentation describes it.

A real HTTP server on 127.0.0.1 (port 0) in a thread: Bearer auth, `page[size]`
capped at 100, `page[after]` continuing after the record with that id, `from`/`to`
filters (inclusive or not, as a test chooses: the documentation does not say),
records in a shuffled order, managed users and their own logs, and scripted
faults (429 with or without Retry-After, 5xx, a slow answer, a reset connection,
an HTML page, a 401). Every request is recorded with the time of the test's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import json
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_PAGE = 100
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


class FakeClock:
    """A simulated clock: `sleep` advances it at once, so a limit of 60/min costs no wall time."""

    def __init__(self, wall_start: float = 1_750_000_000.0) -> None:
        self.now = 0.0
        self.wall_start = wall_start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.wall_start + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


@dataclass
class Fault:
    """One scripted misbehaviour, used by the first request whose path contains `path`."""

    kind: str  # "429", "500", "503", "slow", "reset", "html", "401", "404"
    retry_after: str | None = None
    seconds: float = 0.0
    path: str = "/api/"


@dataclass
class Seen:
    """One request as the fake received it."""

    path: str
    params: dict[str, str]
    status: int | str
    at: float
    authorised: bool


@dataclass
class FakeWorkato:
    token: str
    events: list[dict[str, Any]] = field(default_factory=list)
    managed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    from_inclusive: bool = True
    to_inclusive: bool = False
    managed_users_key: str = "result"
    faults: list[Fault] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- what a request gets -------------------------------------------------------------

    def answer(
        self, path: str, params: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        fault = self._take_fault(path)
        authorised = authorization == f"Bearer {self.token}"
        status, headers, body = self._respond(path, params, authorised, fault)
        with self._lock:
            self.requests.append(
                Seen(
                    path,
                    params,
                    status if fault is None or fault.kind != "reset" else "reset",
                    self.clock(),
                    authorised,
                )
            )
        return status, headers, body

    def _respond(
        self, path: str, params: dict[str, str], authorised: bool, fault: Fault | None
    ) -> tuple[int, dict[str, str], bytes]:
        if fault is not None:
            if fault.kind == "slow":
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                return -1, {}, b""
            elif fault.kind == "html":
                return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"
            else:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return int(fault.kind), headers, _json({"message": f"fault {fault.kind}"})
        if not authorised:
            return 401, {}, _json({"message": "Unauthorized"})
        if path == "/api/activity_logs":
            return 200, {}, _json(self._activity_page(self.events, params))
        parts = path.strip("/").split("/")
        if parts == ["api", "managed_users"]:
            return 200, {}, _json(self._managed_users_page(params))
        if len(parts) == 4 and parts[:2] == ["api", "managed_users"] and parts[3] == "activity_logs":
            if parts[2] not in self.managed:
                return 404, {}, _json({"message": "Not found"})
            return 200, {}, _json(self._activity_page(self.managed[parts[2]], params))
        return 404, {}, _json({"message": "Not found"})

    def _activity_page(self, events: list[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
        size = min(int(params.get("page[size]", MAX_PAGE)), MAX_PAGE)
        start = _parse_iso(params["from"]) if "from" in params else None
        end = _parse_iso(params["to"]) if "to" in params else None
        chosen = [event for event in events if self._within(_event_time(event), start, end)]
        after = params.get("page[after]")
        if after is not None:
            positions = [index for index, event in enumerate(chosen) if str(event["id"]) == after]
            chosen = chosen[positions[0] + 1 :] if positions else []
        return {"data": chosen[:size], "total": len(chosen)}

    def _within(self, moment: dt.datetime, start: dt.datetime | None, end: dt.datetime | None) -> bool:
        if start is not None and (moment < start or (moment == start and not self.from_inclusive)):
            return False
        return not (end is not None and (moment > end or (moment == end and not self.to_inclusive)))

    def _managed_users_page(self, params: dict[str, str]) -> dict[str, Any]:
        page = int(params.get("page", "1"))
        per_page = int(params.get("per_page", "100"))
        users = [
            {"id": int(one) if one.isdigit() else one, "name": f"Customer {one}"} for one in self.managed
        ]
        return {self.managed_users_key: users[(page - 1) * per_page : page * per_page]}

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self.faults):
                if fault.path in path:
                    return self.faults.pop(index)
        return None

    # --- what tests read -------------------------------------------------------------------

    def statuses(self) -> list[int | str]:
        return [seen.status for seen in self.requests]

    def activity_requests(self) -> list[Seen]:
        return [seen for seen in self.requests if seen.path.endswith("/activity_logs")]


def make_events(
    count: int,
    *,
    start: dt.datetime,
    span: dt.timedelta,
    seed: int = 7,
    first_id: int = 1000,
    names: tuple[str, ...] = ("user_login", "recipe_started", "connection_updated", "connector_released"),
    workspace: dict[str, Any] | None = None,
    omit_workspace: bool = False,
) -> list[dict[str, Any]]:
    """`count` API records with unique ids at random seconds in [start, start + span), shuffled."""
    rng = random.Random(seed)
    seconds = int(span.total_seconds())
    events = []
    for number in range(count):
        moment = start + dt.timedelta(seconds=rng.randrange(seconds))
        events.append(
            record(
                first_id + number,
                moment,
                names[number % len(names)],
                workspace=workspace,
                omit_workspace=omit_workspace,
            )
        )
    rng.shuffle(events)
    return events


def record(
    identity: int,
    moment: dt.datetime,
    event_type: str,
    *,
    workspace: dict[str, Any] | None = None,
    omit_workspace: bool = False,
) -> dict[str, Any]:
    """One record shaped like the sample in the documentation (seed 003)."""
    body: dict[str, Any] = {
        "id": identity,
        "timestamp": moment.strftime(TIMESTAMP_FORMAT),
        "event_type": event_type,
        "user": {"id": 2100003309, "name": "John Doe", "email": "john.doe@example.com"},
        "details": {"request": {"ip_address": "183.83.147.66", "user_agent": "Mozilla/5.0"}},
        "resource": {"id": identity % 97, "name": "CustomerSupport", "type": "CustomAdapter"},
    }
    if not omit_workspace:
        body["workspace"] = workspace or {"id": 2100003309, "name": "ACME", "environment": "dev"}
    return body


def retry_after_date(clock: FakeClock, seconds: int) -> str:
    return email.utils.formatdate(clock.time() + seconds, usegmt=True)


class running_fake:
    """Context manager: the fake served on 127.0.0.1 with a free port; sets `fake.url`."""

    def __init__(self, fake: FakeWorkato) -> None:
        self.fake = fake

    def __enter__(self) -> FakeWorkato:
        fake = self.fake

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(parsed.query))
                status, headers, body = fake.answer(parsed.path, params, self.headers.get("Authorization"))
                if status < 0:  # reset: close with RST, answer nothing
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.rfile.close()  # the socket closes (with RST) only when no file holds it
                    self.wfile.close()
                    self.connection.close()
                    return
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client may have given up on a slow answer
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that gave up on a slow answer is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        fake.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return fake

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _event_time(event: dict[str, Any]) -> dt.datetime:
    return dt.datetime.strptime(event["timestamp"], TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)


def _parse_iso(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _json(value: object) -> bytes:
    return json.dumps(value).encode()
