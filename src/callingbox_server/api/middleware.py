"""Our outermost layer: request ids, body limits, the access line, a last line for errors."""

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
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callingbox_server.core.db.outages import is_database_unavailable
from callingbox_server.core.logs import log_request
from callingbox_server.core.metrics import UNMATCHED_ROUTE, Metrics

logger = logging.getLogger("callingbox_server")

_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
RETRY_AFTER_SECONDS = "1"
_TOO_LARGE = "request body is too large"
_SHUTTING_DOWN = "the server is shutting down, retry"


def request_id_of(request: Request) -> str:
    request_id: object = request.scope.get("state", {}).get("request_id")
    return request_id if isinstance(request_id, str) else ""


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _WELL_FORMED_REQUEST_ID.fullmatch(candidate):
                return candidate
            return None
    return None


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

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        status: int | None = None
        started = time.perf_counter()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self._answer(scope, receive, send_observed, request_id)
            finally:
                if status is not None:  # else nothing was answered (cancelled): nothing to count
                    self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        # Routing put the matched route in the scope; its template keeps the label values few.
        route = getattr(scope.get("route"), "path_format", None) or UNMATCHED_ROUTE
        org_id = scope["state"].get("org_id")  # set by the bearer dependency
        log_request(scope["method"], route, status, seconds, org_id)
        if self.metrics is not None:
            self.metrics.observe_request(scope["method"], route, status, seconds)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        response_started = False
        received_bytes = 0

        async def receive_within_limit() -> Message:
            # Counts what actually arrives: a chunked body has no Content-Length to trust.
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.max_body_bytes:
                    raise HTTPException(status_code=413)
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

        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            body, headers = _error_body(request_id, 413, "payload_too_large", _TOO_LARGE)
            await send({"type": "http.response.start", "status": 413, "headers": headers})
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
            if is_database_unavailable(exc):
                logger.warning("database unavailable: %r", exc)
                status, code, message = 503, "unavailable", "the database is unavailable, retry"
            else:
                logger.exception("unhandled error")
                status, code, message = 500, "internal_error", "internal error"
            body, headers = _error_body(request_id, status, code, message)
            if status == 503:
                headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
