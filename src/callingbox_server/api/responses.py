"""Success responses: one object as JSON, with the strong ETag of exactly those bytes."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response

from callingbox_server.api.middleware import JSON_CONTENT_TYPE
from callingbox_server.core.preconditions import etag_of, to_json


def representation(model: BaseModel, status_code: int = 200) -> Response:
    """One object as JSON, with the strong ETag of exactly these bytes."""
    body = to_json(model)
    return Response(
        body, status_code, headers={"ETag": etag_of(body)}, media_type=JSON_CONTENT_TYPE
    )
