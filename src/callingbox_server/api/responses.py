"""Success responses: one object as JSON with the strong ETag of exactly those bytes, or a page."""

from __future__ import annotations

from starlette.responses import Response

from callingbox_server.api.middleware import JSON_CONTENT_TYPE
from callingbox_server.core.preconditions import etag_of


def representation(body: bytes, status_code: int = 200) -> Response:
    """One object's wire JSON (see each domain's views), with the strong ETag of those bytes."""
    return Response(
        body, status_code, headers={"ETag": etag_of(body)}, media_type=JSON_CONTENT_TYPE
    )


def json_bytes(body: bytes) -> Response:
    """JSON already rendered (a page): sent as it is."""
    return Response(body, media_type=JSON_CONTENT_TYPE)
