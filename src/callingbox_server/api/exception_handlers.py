"""Every failure rendered as one JSON error body: ``{"error", "code", "request_id"}``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from callingbox_server.api.middleware import request_id_of
from callingbox_server.core.errors import (
    ApiError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)

logger = logging.getLogger("callingbox_server")


def error_response(request_id: str, error: ApiError) -> JSONResponse:
    body = {"error": error.message, "code": error.code, "request_id": request_id}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def describe_validation_error(errors: Sequence[Any]) -> str:
    """One sentence naming the first offending field, in the API's words rather than pydantic's."""
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    source = loc[0] if loc else "body"
    field = ".".join(loc[1:])
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "request body is not valid JSON"
    message = str(first.get("msg", "is invalid")).removeprefix("Value error, ")
    if source == "body" and not field:
        if kind == "missing":
            return "request body is required"
        if kind == "value_error":  # a rule across fields, whose message names them
            return message
        return "request body must be a JSON object"
    noun = "query parameter" if source == "query" else "field"
    if kind == "missing":
        return f"missing required {noun}: {field}"
    if kind == "extra_forbidden":
        return f"unknown {noun}: {field}"
    if kind in ("uuid_parsing", "uuid_type"):
        return f"invalid {noun} {field}: must be an id (a UUID)"
    return f"invalid {noun} {field}: {message}"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first route's)."""
    routes = request.app.router.routes

    def served(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in routes)

    return [method for method in _METHODS if served(method)]


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request_id_of(request), exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message = describe_validation_error(exc.errors())
        return error_response(request_id_of(request), InvalidRequest(message))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        error: ApiError
        if exc.status_code == 404:
            error = NotFound(f"no route for {request.method} {request.url.path}")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"method {request.method} not allowed on {request.url.path}")
            headers["Allow"] = ", ".join(_allowed_methods(request))
        elif exc.status_code == 413:
            error = PayloadTooLarge("request body is too large")
        elif exc.status_code == 400:
            error = InvalidRequest("request body could not be read")
        else:
            logger.error("unexpected HTTP exception %s: %s", exc.status_code, exc.detail)
            error = ApiError("internal error")
        error.headers.update(headers)
        return error_response(request_id_of(request), error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
