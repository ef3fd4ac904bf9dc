"""What the /v1 routers share: the JSON body check and the documented error responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, WithJsonSchema
from starlette.responses import Response

from callingbox_server.errors import ApiError, ErrorBody, InvalidRequest, UnsupportedMediaType
from callingbox_server.http import JSON_CONTENT_TYPE
from callingbox_server.preconditions import IF_MATCH_PATTERN, IfMatch, etag_of, to_json

_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, or a wrong field, query parameter or header.",
    401: "Missing, malformed, unknown, revoked or expired API key.",
    404: "No such object in the caller's organization.",
    409: "The request conflicts with the current state, or its Idempotency-Key is in use.",
    412: "If-Match does not match the object's current ETag: read it again, then retry.",
    413: "The request body is larger than the configured limit.",
    415: "The request body is not application/json.",
    422: "The Idempotency-Key was already used with a different request.",
    503: "The database is unavailable; retry after the Retry-After delay.",
}


_REQUEST_ID_EXAMPLE = "2b0c9e6e-8a53-4d4e-9f1c-3c5a7e1d9b10"
_AGENT_ID_EXAMPLE = "0b9e6c1a-5d3f-4c27-9a8e-1f2b3c4d5e6f"
_NUMBER_ID_EXAMPLE = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
# Example bodies (code, error) per status, worded as the server words them.
_EXAMPLES: dict[int, list[tuple[str, str]]] = {
    400: [("invalid_request", "missing required field: name")],
    401: [("unauthorized", "invalid or missing API key")],
    404: [("not_found", f"agent {_AGENT_ID_EXAMPLE} not found")],
    409: [
        (
            "number_in_use",
            f"number {_NUMBER_ID_EXAMPLE} already answers for inbound agent {_AGENT_ID_EXAMPLE}",
        ),
        ("agent_archived", f"agent {_AGENT_ID_EXAMPLE} is archived"),
        ("number_unavailable", "phone number +14155550100 is not available"),
    ],
    413: [("payload_too_large", "request body is too large")],
    415: [
        ("unsupported_media_type", "request body must be sent as Content-Type: application/json")
    ],
    503: [("unavailable", "the database is unavailable, retry")],
}


def _examples(status: int) -> dict[str, Any]:
    """Named OpenAPI examples of a status's error bodies, one per error code."""
    # A status without examples here still gets one per ApiError of that status.
    known = _EXAMPLES.get(status) or [
        (error.code, _DESCRIPTIONS[status]) for error in _api_errors() if error.status == status
    ]
    return {
        code: {"value": {"error": message, "code": code, "request_id": _REQUEST_ID_EXAMPLE}}
        for code, message in known
    }


def _api_errors() -> list[type[ApiError]]:
    found, pending = [], list(ApiError.__subclasses__())
    while pending:
        error = pending.pop()
        found.append(error)
        pending.extend(error.__subclasses__())
    return found


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route can answer with (401 and 503 on every one)."""
    every = sorted({401, 503, *statuses})
    return {
        s: {
            "model": ErrorBody,
            "description": _DESCRIPTIONS[s],
            "content": {"application/json": {"examples": _examples(s)}},
        }
        for s in every
    }


BODY_ERRORS = (400, 413, 415)
# A POST with an Idempotency-Key may also meet the first request still running, or another body.
IDEMPOTENT_ERRORS = (409, 422)

_ETAG_HEADER = {
    "ETag": {
        "description": "The object's version: send it back in If-Match to change it safely.",
        "schema": {"type": "string"},
    }
}


def object_responses(*errors: int, status_code: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route that answers with one agent or number (and its ETag)."""
    return {status_code: {"headers": _ETAG_HEADER}, **error_responses(*errors)}


def representation(model: BaseModel, status_code: int = 200) -> Response:
    """One object as JSON, with the strong ETag of exactly these bytes."""
    body = to_json(model)
    return Response(
        body, status_code, headers={"ETag": etag_of(body)}, media_type=JSON_CONTENT_TYPE
    )


def optional_header(pattern: str, **schema: Any) -> WithJsonSchema:
    """An optional header's schema: a string (never ``null``) that matches ``pattern``, which
    the route checks itself."""
    return WithJsonSchema({"type": "string", "pattern": f"^{pattern}$", **schema})


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="Apply the change only if the object's ETag is still this one (else 412).",
        ),
        optional_header(IF_MATCH_PATTERN, examples=['"3f0a4cbe5f1d2e7a9b6c8d0e1f2a3b4c"']),
    ] = None,
) -> IfMatch | None:
    return None if if_match is None else IfMatch.parse(if_match)


IfMatchDep = Annotated[IfMatch | None, Depends(_if_match)]


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def check_query_parameters(request: Request) -> None:
    """Repeated and unknown query parameters are 400; most requests have none to check."""
    if request.scope["query_string"]:
        _reject_repeated_query_parameters(request)
        _reject_unknown_query_parameters(request)


def _reject_repeated_query_parameters(request: Request) -> None:
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


def _reject_unknown_query_parameters(request: Request) -> None:
    """Routes with a query model forbid unknown fields themselves; the others take none at all."""
    route = request.scope.get("route")
    if (
        request.query_params
        and isinstance(route, APIRoute)
        and not _declares_query_parameters(route.dependant)
    ):
        name = next(iter(request.query_params))
        raise InvalidRequest(f"unknown query parameter: {name}")
