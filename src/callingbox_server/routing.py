"""What the /v1 routers share: the JSON body check and the documented error responses."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from callingbox_server.errors import ErrorBody, InvalidRequest, UnsupportedMediaType

_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, a wrong or missing field, or a bad query parameter.",
    401: "Missing, malformed, unknown, revoked or expired API key.",
    404: "No such object in the caller's organization.",
    409: "The request conflicts with the current state.",
    413: "The request body is larger than the configured limit.",
    415: "The request body is not application/json.",
    503: "The database is unavailable; retry after the Retry-After delay.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route can answer with (401 and 503 on every one)."""
    every = sorted({401, 503, *statuses})
    return {s: {"model": ErrorBody, "description": _DESCRIPTIONS[s]} for s in every}


BODY_ERRORS = (400, 413, 415)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def reject_repeated_query_parameters(request: Request) -> None:
    """``?limit=1&limit=2`` is ambiguous: say so rather than silently pick one."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = next((name for name in names if names.count(name) > 1), None)
    if repeated is not None:
        raise InvalidRequest(f"query parameter {repeated} is given more than once")


async def require_json(request: Request) -> None:
    """A body, when there is one, must be JSON (checked after auth, before validation)."""
    if await request.body() and not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType("request body must be sent as Content-Type: application/json")


def _declares_query_parameters(dependant: Dependant) -> bool:
    return bool(dependant.query_params) or any(
        _declares_query_parameters(sub) for sub in dependant.dependencies
    )


def reject_unknown_query_parameters(request: Request) -> None:
    """Routes with a query model forbid unknown fields themselves; the others take none at all."""
    route = request.scope.get("route")
    if (
        request.query_params
        and isinstance(route, APIRoute)
        and not _declares_query_parameters(route.dependant)
    ):
        name = next(iter(request.query_params))
        raise InvalidRequest(f"unknown query parameter: {name}")
