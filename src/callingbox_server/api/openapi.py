"""The OpenAPI document: the error responses routes declare, and touches to what FastAPI makes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import WithJsonSchema

from callingbox_server.core.errors import ApiError, ErrorBody

_DESCRIPTIONS = {
    400: "Invalid request: malformed JSON, or a wrong field, query parameter or header.",
    401: "Missing, malformed, unknown, revoked or expired API key.",
    404: "No such object in the caller's organization.",
    409: "The request conflicts with the current state, or its Idempotency-Key is in use.",
    412: "If-Match does not match the object's current ETag: read it again, then retry.",
    413: "The request body is larger than the configured limit.",
    415: "The request body is not application/json.",
    422: "The Idempotency-Key was already used with a different request.",
    429: "The organization is over its request rate or its requests at once; retry after the"
    " Retry-After delay.",
    502: "The carrier could not place the call; nothing was created.",
    503: "The database is unavailable, or every database connection is busy (overloaded);"
    " retry after the Retry-After delay.",
}

_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
# Headers each error status carries.
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: always `Bearer`.",
            "schema": {"type": "string", "examples": ["Bearer"]},
        }
    },
    429: {
        "Retry-After": _RETRY_AFTER,
        "RateLimit-Policy": {
            "description": "The organization's limits (draft-ietf-httpapi-ratelimit-headers),"
            ' e.g. `"requests";q=3000;w=1, "concurrency";q=5;qu="concurrent-requests"`.',
            "schema": {"type": "string"},
        },
        "RateLimit": {
            "description": 'The limit that ran out, e.g. `"requests";r=0;t=1`.',
            "schema": {"type": "string"},
        },
    },
    503: {"Retry-After": _RETRY_AFTER},
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
    429: [
        (
            "rate_limited",
            "too many requests for this organization: at most 3000 a second; retry after 1 second",
        )
    ],
    503: [
        ("unavailable", "the database is unavailable, retry"),
        ("overloaded", "the server is busy: every database connection stayed in use, retry"),
    ],
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
    """OpenAPI entries for the errors a route can answer with (401, 429 and 503 on every one)."""
    every = sorted({401, 429, 503, *statuses})
    return {
        s: {
            "model": ErrorBody,
            "description": _DESCRIPTIONS[s],
            "content": {"application/json": {"examples": _examples(s)}},
            **({"headers": _HEADERS[s]} if s in _HEADERS else {}),
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


def optional_header(pattern: str, **schema: Any) -> WithJsonSchema:
    """An optional header's schema: a string (never ``null``) that matches ``pattern``, which
    the route checks itself."""
    return WithJsonSchema({"type": "string", "pattern": f"^{pattern}$", **schema})


def example(value: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": value}}}


def document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less its validation 422s (ours are 400s; the only 422 is
    ``idempotency_key_reused``)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema["paths"].values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    del responses["422"]
        schemas = schema.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        restore_example_nulls(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def restore_example_nulls(document: dict[str, Any]) -> None:
    """Put back the nulls FastAPI drops from examples (it renders the document without None).

    Only what the schema itself allows back: a required property that may be null and is missing
    from an example was a null there (an agent's ``archived_at``, a number's ``inbound_agent_id``).
    """
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def nullable(schema: dict[str, Any]) -> bool:
        branches = [schema, *schema.get("anyOf", [])]
        return any(branch.get("type") == "null" for branch in branches)

    def fill(schema: dict[str, Any], value: Any) -> None:
        schema = resolve(schema)
        for branch in schema.get("anyOf", []):
            if branch.get("type") != "null":
                fill(branch, value)
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            for name in schema.get("required", []):
                if name not in value and nullable(properties.get(name, {})):
                    value[name] = None
            for name, item in value.items():
                if name in properties:
                    fill(properties[name], item)
        elif isinstance(value, list) and "items" in schema:
            for item in value:
                fill(schema["items"], item)

    for schema in schemas.values():
        for example in schema.get("examples", []):
            fill(schema, example)
    for item in document.get("paths", {}).values():
        for operation in item.values():
            bodies = [operation.get("requestBody", {})]
            bodies += operation.get("responses", {}).values()
            for body in bodies:
                for media in body.get("content", {}).values():
                    schema = media.get("schema", {})
                    if "example" in media:
                        fill(schema, media["example"])
                    for example in media.get("examples", {}).values():
                        fill(schema, example.get("value"))
