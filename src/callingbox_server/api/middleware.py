"""Our outermost layer: request ids, body and query limits, HEAD, the access line, a last line
for errors."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

import structlog
from fastapi import HTTPException
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callingbox_server.core.db.outages import is_database_unavailable, outage_of
from callingbox_server.core.errors import InvalidRequest
from callingbox_server.core.fair_share import FairShare
from callingbox_server.core.logs import log_request
from callingbox_server.core.metrics import UNMATCHED_ROUTE, Metrics

logger = logging.getLogger("callingbox_server")

_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
RETRY_AFTER_SECONDS = "1"
_TOO_LARGE = "request body is too large"
_SHUTTING_DOWN = "the server is shutting down, retry"
_OUTAGES = {
    "unavailable": "the database is unavailable, retry",
    "overloaded": "the server is busy: every database connection stayed in use, retry",
}
_NOT_UTF8 = "request body must be JSON encoded as UTF-8"
_CHARSET = re.compile(rb";\s*charset\s*=\s*\"?([^\";\s]*)", re.IGNORECASE)

__all__ = ["is_database_unavailable"]  # tests import it from here


def request_id_of(request: Request) -> str:
    request_id: object = request.scope.get("state", {}).get("request_id")
    return request_id if isinstance(request_id, str) else ""


def well_formed_request_id(value: bytes) -> str | None:
    candidate = value.decode("latin-1")
    return candidate if _WELL_FORMED_REQUEST_ID.fullmatch(candidate) else None


def _charset_refused(content_type: bytes | None) -> bool:
    """RFC 8259 8.1: JSON between systems is UTF-8; a body declared otherwise is refused."""
    if content_type is None or b"charset" not in content_type.lower():
        return False
    found = _CHARSET.search(content_type)
    return found is None or found.group(1).lower() not in (b"utf-8", b"utf8")


def _error_body(request_id: str, status: int, code: str, message: str) -> tuple[bytes, list[Any]]:
    payload = {"error": message, "code": code, "request_id": request_id}
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [
        (b"content-type", JSON_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    return body, headers


class RequestContextMiddleware:
    """Gives every request an id (echoed, or new) and every response the ``X-Request-Id`` header.

    It also answers for anything the app let escape: a database outage becomes 503 with
    ``Retry-After``, any other exception a logged 500 whose body holds nothing internal. Then it
    writes the request's log line and counts it in the metrics. Every line logged meanwhile
    carries the request id.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_query_parameters: int,
        fair_share: FairShare,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_parameters = max_query_parameters
        self.fair_share = fair_share
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        declared = content_type = None
        for name, value in scope["headers"]:  # one pass for the three headers read here
            if name == b"x-request-id" and request_id is None:
                request_id = well_formed_request_id(value) or ""
            elif name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
        request_id = request_id or str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        head = scope["method"] == "HEAD"
        # RFC 9110 9.3.2: HEAD is GET without the body. The routes see a GET (in a copy of the
        # scope: the server still knows it answers a HEAD); the body is dropped on the way out.
        app_scope = {**scope, "method": "GET"} if head else scope
        status: int | None = None
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif head and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self._answer(
                    app_scope, receive, send_observed, request_id, declared, content_type
                )
            finally:
                org_id = state.pop("fair_share_org", None)
                if org_id is not None:
                    self.fair_share.release(org_id)
                if status is not None:  # else nothing was answered (cancelled): nothing to count
                    self._observe(scope["method"], app_scope, status, time.perf_counter() - started)

    def _observe(self, method: str, scope: Scope, status: int, seconds: float) -> None:
        # Routing put the matched route in the scope; its template keeps the label values few.
        route = getattr(scope.get("route"), "path_format", None) or UNMATCHED_ROUTE
        org_id = scope["state"].get("org_id")  # set by the bearer dependency
        log_request(method, route, status, seconds, org_id)
        if self.metrics is not None:
            self.metrics.observe_request(method, route, status, seconds)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        declared: bytes | None,
        content_type: bytes | None,
    ) -> None:
        response_started = False
        received_bytes = 0

        async def receive_within_limit() -> Message:
            # Counts what actually arrives: a chunked body has no Content-Length to trust.
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    received_bytes += len(body)
                    if received_bytes > self.max_body_bytes:
                        raise HTTPException(status_code=413)
                    # JSON in UTF-16 or UTF-32 has a NUL byte in every ASCII character, and
                    # UTF-8 JSON never has one (RFC 8259 8.1 and 7): a scan at memchr speed.
                    if b"\x00" in body or _charset_refused(content_type):
                        raise InvalidRequest(_NOT_UTF8)
            return message

        async def send_with_request_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                if headers.get("content-type") == "application/json":
                    headers["content-type"] = JSON_CONTENT_TYPE
            await send(message)

        refusal = None
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            refusal = (413, "payload_too_large", _TOO_LARGE)
        elif scope["query_string"].count(b"&") >= self.max_query_parameters:
            refusal = (
                400,
                "invalid_request",
                f"too many query parameters: at most {self.max_query_parameters}",
            )
        if refusal is not None:
            body, headers = _error_body(request_id, *refusal)
            await send({"type": "http.response.start", "status": refusal[0], "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive_within_limit, send_with_request_id)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when the graceful shutdown timeout is over: tell
            # the client to retry, rather than let uvicorn send its plain-text 500.
            if not response_started:
                body, headers = _error_body(request_id, 503, "unavailable", _SHUTTING_DOWN)
                headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
            raise
        except Exception as exc:
            if response_started:
                # Too late for an error body. Logged here, once, with the request id: re-raising
                # would have uvicorn log the traceback again, without it (it closes the
                # connection of an unfinished response either way).
                logger.exception("error after the response started")
                return
            outage = outage_of(exc)
            if outage is not None:
                logger.warning("database %s: %r", outage, exc)
                status, code, message = 503, str(outage), _OUTAGES[outage]
            else:
                logger.exception("unhandled error")
                status, code, message = 500, "internal_error", "internal error"
            body, headers = _error_body(request_id, status, code, message)
            if status == 503:
                headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
