"""Real HTTP receivers on 127.0.0.1 (the standard library's threading server): each records
what arrives, answers as scripted, and counts requests that overlapped."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request had arrived

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b'{"received":true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Script = Callable[[int], Reply]  # the reply to the n-th request (0-based)


def replies(*statuses: int | Reply) -> Script:
    """The n-th request gets the n-th reply; every later one the last."""
    answers = [s if isinstance(s, Reply) else Reply(s) for s in statuses]
    return lambda n: answers[min(n, len(answers) - 1)]


class Receiver:
    def __init__(self, script: Script, host: str = "127.0.0.1", path: str = "/hook") -> None:
        self.script = script
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        # Requests that arrived while another of the same delivery (event id) was unanswered.
        self.overlaps = 0
        self._open: dict[str, int] = {}
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event_id = self.headers.get("CallingBox-Event-Id", "")
                with receiver._lock:
                    receiver.overlaps += receiver._open.get(event_id, 0) > 0
                    receiver._open[event_id] = receiver._open.get(event_id, 0) + 1
                    n = len(receiver.received)
                    receiver.received.append(
                        Received(dict(self.headers.items()), body, time.time())
                    )
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                    receiver._lock.notify_all()
                reply = receiver.script(n)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1
                        receiver._open[event_id] -= 1

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a sender that gave up (a timeout, a killed runner) is no test failure

        self.server = Server((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}{path}"
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    async def wait_for(self, count: int, within: float = WAIT_SECONDS) -> list[Received]:
        """The first ``count`` requests, once they have arrived (fails after ``within`` s).
        Polls without blocking: the runner under test may share this event loop."""
        deadline = time.monotonic() + within
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.received)} of {count} requests arrived in {within}s"
                )
            await asyncio.sleep(0.01)
        with self._lock:
            return list(self.received[:count])

    async def quiet_for(self, seconds: float) -> int:
        """How many requests arrived in all, after ``seconds`` more of listening."""
        await asyncio.sleep(seconds)
        with self._lock:
            return len(self.received)


@contextmanager
def receiving(script: Script | None = None, **options: Any) -> Iterator[Receiver]:
    receiver = Receiver(script or replies(200), **options)
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> None:
    """CallingBox-Signature checked from the contract's words, independently of our signer:
    ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.partition("=")
        parts.setdefault(key, []).append(value)
    (timestamp,) = parts["t"]
    assert abs(time.time() - int(timestamp)) <= tolerance
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    assert any(hmac.compare_digest(v, expected.hexdigest()) for v in parts["v1"]), "bad signature"


def types_of(received: Sequence[Received]) -> list[str]:
    return [r.json()["type"] for r in received]
