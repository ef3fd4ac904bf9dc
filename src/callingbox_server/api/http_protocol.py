"""uvicorn's httptools protocol with bounds on the request head, and its errors in our JSON shape.

httptools (llhttp) puts no limit on the request line or the header fields and buffers a header
until it ends, so the head is bounded here: the request target (``414``), the header section and
its number of fields (``431``), and the time the whole head may take to arrive (``408``, so that
a client sending a byte a second cannot hold a connection). Transfer codings other than
``chunked`` are ``501`` (RFC 9112 6.1), conflicting or malformed framing headers ``400``, and an
unknown method ``501`` (RFC 9110 9.1). Every such answer is our JSON error body with an
``X-Request-Id``, and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from callingbox_server.api.middleware import well_formed_request_id
from callingbox_server.core.config import get_settings

logger = logging.getLogger("callingbox_server")

# What a header field line costs beyond its name and value: ": " and CRLF.
_FIELD_OVERHEAD = 4
LINGER_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_url_bytes: int
    max_header_bytes: int
    max_header_count: int
    header_timeout: float


@lru_cache
def head_limits() -> HeadLimits:
    settings = get_settings()
    return HeadLimits(
        settings.max_url_bytes,
        settings.max_header_bytes,
        settings.max_header_count,
        settings.header_timeout,
    )


class Rejection(Exception):
    """Raised in a parser callback to stop parsing; answered as the JSON error it carries."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _malformed() -> Rejection:
    return Rejection(400, "invalid_request", "malformed HTTP request")


def _framing() -> Rejection:
    return Rejection(
        400,
        "invalid_request",
        "invalid or conflicting Content-Length and Transfer-Encoding headers",
    )


def _parser_rejection(error: httptools.HttpParserError) -> Rejection:
    cause = error.__context__
    if isinstance(cause, Rejection):
        return cause
    if isinstance(error, httptools.HttpParserInvalidMethodError):
        return Rejection(501, "not_implemented", "unknown HTTP method")
    text = str(error)
    if "Content-Length" in text or "Transfer-Encoding" in text:
        return _framing()
    return _malformed()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``serve`` runs uvicorn with this as its ``http`` protocol (one instance per connection)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = head_limits()
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_started = False  # a byte of the current head has arrived
        self.head_raw_bytes = 0  # bytes received while the current head was incomplete
        self.url_bytes = 0
        self.header_bytes = 0
        self.content_length_seen = False
        self.rejected = False

    # The head's deadline runs from the connection (or the end of the previous response, when
    # the next byte comes) to the end of the header section, however slowly it trickles in.
    def _arm_head_timer(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head waits for the response before it
        elif self.head_started:
            self._reject(
                Rejection(408, "request_timeout", "the request headers did not arrive in time")
            )
        else:
            self.transport.close()  # nothing was sent at all: nothing to answer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.rejected:
            return  # the answer is out; what the client still sends is read and dropped
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head_timer()
            self.head_started = True
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # as uvicorn does (no WebSocket here: a warning)
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as error:
            self._reject(_parser_rejection(error))
            return
        if self.head_timer is not None and self.head_started:
            # Still in a head: httptools holds a header until it ends, so count raw bytes too.
            self.head_raw_bytes += len(data)
            if self.head_raw_bytes > self.limits.max_url_bytes + self.limits.max_header_bytes:
                self._reject(self._headers_too_large())

    def _headers_too_large(self) -> Rejection:
        return Rejection(
            431,
            "headers_too_large",
            f"the request headers are larger than {self.limits.max_header_bytes} bytes"
            f" or have more than {self.limits.max_header_count} fields",
        )

    def _reject(self, rejection: Rejection) -> None:
        self._disarm_head_timer()
        self.rejected = True
        request_id = self._incoming_request_id() or str(uuid.uuid4())
        logger.warning(
            "request refused before the app: %s %s (request_id=%s)",
            rejection.status,
            rejection.message,
            request_id,
        )
        payload = {"error": rejection.message, "code": rejection.code, "request_id": request_id}
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = b"%s%s: %d\r\n%s: %s\r\n%s\r\n" % (
            STATUS_LINE[rejection.status],
            b"content-length",
            len(body),
            b"x-request-id",
            request_id.encode(),
            b"content-type: application/json; charset=utf-8\r\nconnection: close\r\n",
        )
        self.transport.write(head + body)
        # Closing while the client still sends would reset the connection, and the client could
        # lose the answer with it: stop writing, drop what comes for a moment, then close.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _incoming_request_id(self) -> str | None:
        for name, value in self.headers or ():
            if name == b"x-request-id":
                return well_formed_request_id(value)
        return None

    # Parser callbacks: uvicorn's, with the bounds checked as the head arrives.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()
        self.head_started = True
        self.head_raw_bytes = self.url_bytes = self.header_bytes = 0
        self.content_length_seen = False

    def on_url(self, url: bytes) -> None:
        self.url_bytes += len(url)
        if self.url_bytes > self.limits.max_url_bytes:
            raise Rejection(
                414,
                "uri_too_long",
                f"the request target is longer than {self.limits.max_url_bytes} bytes",
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + _FIELD_OVERHEAD
        if (
            self.header_bytes > self.limits.max_header_bytes
            or len(self.headers) >= self.limits.max_header_count
        ):
            raise self._headers_too_large()
        lowered = name.lower()
        if lowered == b"content-length":
            if self.content_length_seen:  # even with the same value: one is all a body needs
                raise _framing()
            self.content_length_seen = True
        elif lowered == b"transfer-encoding":
            codings = [coding.strip().lower() for coding in value.split(b",")]
            if codings != [b"chunked"]:
                if b"chunked" in codings[:-1]:
                    raise _framing()  # RFC 9112 6.3: chunked last, or the length is unknown
                others = b", ".join(c for c in codings if c != b"chunked").decode("latin-1")
                raise Rejection(
                    501,
                    "not_implemented",
                    f"Transfer-Encoding {others} is not supported: send the body as is or chunked",
                )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        self.head_started = False
        super().on_headers_complete()
