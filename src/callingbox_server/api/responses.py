"""Success responses: one object as JSON with the strong ETag of exactly those bytes, or a page."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response

from callingbox_server.api.middleware import JSON_CONTENT_TYPE
from callingbox_server.core.preconditions import etag_of, to_json


def representation(body: bytes | BaseModel, status_code: int = 200) -> Response:
    """One object as JSON (its wire bytes, or a model to serialize), with the strong ETag of
    exactly the bytes sent."""
    content = body if isinstance(body, bytes) else to_json(body)
    return Response(
        content, status_code, headers={"ETag": etag_of(content)}, media_type=JSON_CONTENT_TYPE
    )


def json_bytes(body: bytes) -> Response:
    """JSON already rendered (a page): sent as it is."""
    return Response(body, media_type=JSON_CONTENT_TYPE)
