"""The outermost layer of our own: request ids, JSON content type, and a last line for errors."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from typing import Any

import sqlalchemy.exc
from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callingbox_server import outages

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


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection-level failures (refused, timed out, dropped), not errors in our own SQL."""
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pool slot came free in time
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return outages.is_connection_failure(exc)


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
    ``Retry-After``, any other exception a logged 500 whose body holds nothing internal.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
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
                logger.exception("error after the response started, request_id=%s", request_id)
                raise
            if is_database_unavailable(exc):
                logger.warning("database unavailable, request_id=%s: %r", request_id, exc)
                status, code, message = 503, "unavailable", "the database is unavailable, retry"
            else:
                logger.exception("unhandled error, request_id=%s", request_id)
                status, code, message = 500, "internal_error", "internal error"
            body, headers = _error_body(request_id, status, code, message)
            if status == 503:
                headers.append((b"retry-after", RETRY_AFTER_SECONDS.encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
