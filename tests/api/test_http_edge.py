"""The request head, as the attacks of issue 14 sent it: raw bytes on a real socket to a real
``serve`` process, and what comes back (our JSON error, with a request id) or when it closes."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.servers import running_server

# Time-bounded: run alone, so that another test's load cannot push them past their bounds.
pytestmark = [pytest.mark.system, pytest.mark.serial]

HTTPX_KEEP_ALIVE = httpx.Limits().keepalive_expiry or 5.0  # seconds an idle connection is kept
HEADER_TIMEOUT = 1.5  # CALLINGBOX_HEADER_TIMEOUT for this server (the default is 10 s)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, str]:
        assert self.headers["content-type"] == "application/json; charset=utf-8"
        payload: dict[str, str] = json.loads(self.body)
        assert payload["request_id"] == self.headers["x-request-id"]
        return payload


@pytest.fixture(scope="module")
def port(database_url: str) -> Iterator[int]:
    settings = {"CALLINGBOX_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    with running_server(database_url, settings=settings) as base_url:
        yield urlsplit(base_url).port or 80


def read_answer(sock: socket.socket) -> Answer:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer after {buffer!r}"
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def send(port: int, data: bytes) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_answer(sock)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def healthz_ms(port: int) -> float:
    started = time.perf_counter()
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    return (time.perf_counter() - started) * 1000


class TestRequestTarget:
    def test_ten_thousand_query_parameters_are_414_at_once(self, port: int) -> None:
        query = "&".join(f"a{i}" for i in range(10_000))  # 59 KB: the request
        answer = send(port, f"GET /v1/agents?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

        assert answer.status == 414
        assert answer.error() == {
            "error": "the request target is longer than 8192 bytes",
            "code": "uri_too_long",
            "request_id": answer.headers["x-request-id"],
        }
        assert answer.headers["connection"] == "close"

    def test_a_64_kib_url_is_414(self, port: int) -> None:
        answer = send(port, b"GET /healthz?" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n")

        assert answer.status == 414
        assert answer.error()["code"] == "uri_too_long"

    def test_a_target_at_the_limit_is_served(self, port: int) -> None:
        target = "/healthz?" + "a" * (8192 - len("/healthz?"))
        answer = send(port, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

        assert answer.status == 200


class TestHeaderSize:
    def test_a_64_mb_header_is_431_early_and_others_are_served_meanwhile(self, port: int) -> None:
        data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 20) + b"\r\n\r\n"
        latencies: list[float] = []
        other = threading.Thread(target=lambda: latencies.append(healthz_ms(port)))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sender = threading.Thread(target=_send_ignoring_reset, args=(sock, data))
            sender.start()
            other.start()
            answer = read_answer(sock)
            sender.join()
            other.join()

        assert answer.status == 431
        assert answer.error() == {
            "error": "the request headers are larger than 32768 bytes or have more than 100 fields",
            "code": "headers_too_large",
            "request_id": answer.headers["x-request-id"],
        }
        assert len(latencies) == 1

    def test_more_than_100_header_fields_are_431(self, port: int) -> None:
        fields = "".join(f"X-F{i}: v\r\n" for i in range(101))
        answer = send(port, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())

        assert answer.status == 431
        assert answer.error()["code"] == "headers_too_large"

    def test_headers_under_the_limits_are_served(self, port: int) -> None:
        fields = "".join(f"X-F{i}: {'v' * 200}\r\n" for i in range(90))
        answer = send(port, f"GET /healthz HTTP/1.1\r\n{fields}\r\n".encode())

        assert answer.status == 200


def _send_ignoring_reset(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    try:
        for offset in range(0, len(view), 1 << 20):
            sock.sendall(view[offset : offset + (1 << 20)])
    except OSError:
        pass  # the server answered and stopped reading: what the test expects


class TestHeaderTimeout:
    def test_fifty_connections_sending_a_byte_a_second_are_closed_with_408(self, port: int) -> None:
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        try:
            for sock in socks:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            answers: dict[int, Answer] = {}
            while len(answers) < len(socks) and time.monotonic() - started < HEADER_TIMEOUT + 5:
                for index, sock in enumerate(socks):
                    if index in answers:
                        continue
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X")  # one more byte of a header that never ends
                    sock.settimeout(0.01)
                    with contextlib.suppress(TimeoutError):
                        answers[index] = read_answer(sock)
                time.sleep(0.25)
            elapsed = time.monotonic() - started
            assert len(answers) == 50
            assert HEADER_TIMEOUT - 0.5 < elapsed < HEADER_TIMEOUT + 3
            for answer in answers.values():
                assert answer.status == 408
                assert answer.error()["code"] == "request_timeout"
            for sock in socks:
                sock.settimeout(5)
                assert closed_by_server(sock)
            assert healthz_ms(port) < 1000  # others were served all along
        finally:
            for sock in socks:
                sock.close()

    def test_a_connection_that_sends_nothing_is_closed_without_an_answer(self, port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT + 5) as sock:
            started = time.monotonic()
            assert sock.recv(1024) == b""
            assert time.monotonic() - started < HEADER_TIMEOUT + 3

    def test_a_kept_alive_connection_serves_requests_slower_than_the_timeout(
        self, port: int
    ) -> None:
        # The deadline covers one head, not the connection's life: two requests, each in time.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for _ in range(2):
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                time.sleep(HEADER_TIMEOUT / 2)
                sock.sendall(b"\r\n")
                assert read_answer(sock).status == 200
                time.sleep(HEADER_TIMEOUT / 2)


class TestKeepAlive:
    def test_a_connection_idle_past_the_clients_keep_alive_is_still_served(self, port: int) -> None:
        # httpx keeps an idle connection 5 s: a server closing at 5 s (uvicorn's default) races
        # the client reusing it, and the request it sends then is reset. Ours stays open longer.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(sock).status == 200
            time.sleep(HTTPX_KEEP_ALIVE + 1)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(sock).status == 200


FRAMING = "invalid or conflicting Content-Length and Transfer-Encoding headers"


class TestParserErrors:
    @pytest.mark.parametrize(
        ("data", "status", "code", "message"),
        [
            (b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented", None),
            (
                b"POST /v1/agents HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
                400,
                "invalid_request",
                FRAMING,
            ),
            (
                b"POST /v1/agents HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}",
                400,
                "invalid_request",
                FRAMING,
            ),
            (
                b"POST /v1/agents HTTP/1.1\r\nContent-Length: 7\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                400,
                "invalid_request",
                FRAMING,
            ),
            (
                b"POST /v1/agents HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                b"Content-Length: 7\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                400,
                "invalid_request",
                FRAMING,
            ),
            (
                b"POST /v1/agents HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
                501,
                "not_implemented",
                "Transfer-Encoding xchunked is not supported: send the body as is or chunked",
            ),
            (
                b"POST /v1/agents HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                b"2\r\n{}\r\n0\r\n\r\n",
                501,
                "not_implemented",
                "Transfer-Encoding gzip is not supported: send the body as is or chunked",
            ),
            (
                b"POST /v1/agents HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                400,
                "invalid_request",
                FRAMING,
            ),
            (b"GET /healthz HTTP/1.1\r\nHost\x01: x\r\n\r\n", 400, "invalid_request", None),
        ],
        ids=[
            "unknown-method",
            "duplicate-content-length",
            "signed-content-length",
            "content-length-then-chunked",
            "chunked-then-content-length",
            "xchunked",
            "gzip-chunked",
            "chunked-not-last",
            "control-byte-in-header",
        ],
    )
    def test_answered_as_json_with_a_request_id(
        self, port: int, data: bytes, status: int, code: str, message: str | None
    ) -> None:
        answer = send(port, data)

        assert answer.status == status
        payload = answer.error()
        assert payload["code"] == code
        if message is not None:
            assert payload["error"] == message
        assert UUID.fullmatch(payload["request_id"])
        assert answer.headers["connection"] == "close"

    def test_the_unknown_method_message(self, port: int) -> None:
        answer = send(port, b"FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

        assert answer.error()["error"] == "unknown HTTP method"

    def test_a_well_formed_request_id_sent_before_the_error_is_echoed(self, port: int) -> None:
        answer = send(
            port,
            b"POST /v1/agents HTTP/1.1\r\nX-Request-Id: trace-42\r\n"
            b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        )

        assert answer.status == 501
        assert answer.error()["request_id"] == "trace-42"

    def test_gzip_chunked_body_never_reaches_the_app(self, port: int, live_key: str) -> None:
        body = b'{"name": "smuggled", "type": "outbound"}'
        data = (
            b"POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            b"%x\r\n%s\r\n0\r\n\r\n" % (live_key.encode(), len(body), body)
        )
        assert send(port, data).status == 501

        listed = httpx.get(
            f"http://127.0.0.1:{port}/v1/agents",
            headers={"Authorization": f"Bearer {live_key}"},
        )
        assert listed.json()["data"] == []
