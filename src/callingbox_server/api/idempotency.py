"""``Idempotency-Key`` on POST: a retried request replays the first one's response.

The semantics are Stripe's and those of the IETF httpapi draft
(https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/):

- keys are scoped by org, so no tenant can ever see another's stored response;
- the first request's status and body are stored in the same transaction as its work, so a
  stored response always describes work that was committed, and work that was rolled back
  (a crash, a database outage) leaves no stored response and may simply be retried;
- a 5xx answer is not stored either: it says nothing about the request, and a retry may succeed;
- a retry with another method, path or body is ``422 idempotency_key_reused``; a retry while
  the first request still runs is ``409 idempotency_in_progress``;
- requests rejected before their work starts (authentication, validation) are not stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from callingbox_server.api.dependencies import PrincipalDep, SessionDep
from callingbox_server.api.exception_handlers import error_response
from callingbox_server.api.middleware import JSON_CONTENT_TYPE, request_id_of
from callingbox_server.api.openapi import optional_header
from callingbox_server.core import models
from callingbox_server.core.errors import (
    ApiError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidRequest,
)
from callingbox_server.domains.idempotency import repository

# Printable ASCII; no space at either end, where HTTP would strip it.
_KEY_PATTERN = r"[!-~]([ -~]{0,253}[!-~])?"
_KEY_SHAPE = re.compile(_KEY_PATTERN)
IDEMPOTENCY_KEY_MESSAGE = (
    "invalid Idempotency-Key header: must be 1 to 255 printable ASCII characters, "
    "not starting or ending with a space, such as a UUID"
)
REPLAYED_HEADER = "Idempotent-Replayed"


def _fingerprint(method: str, path: str, body: bytes) -> bytes:
    """What a retry must repeat: method, path and body (the body as JSON, so that key order
    and whitespace do not matter)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).digest()


def _lock_id(org_id: uuid.UUID, key: str) -> int:
    """A 64-bit advisory lock id for (org, key); a collision only makes a retry wait its turn."""
    digest = hashlib.sha256(org_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Idempotency:
    """Runs a POST's work once per (org, key) and stores its outcome for replays."""

    def __init__(
        self, request: Request, session: AsyncSession, org_id: uuid.UUID, key: str | None
    ) -> None:
        self.request = request
        self.session = session
        self.org_id = org_id
        self.key = key

    async def run(self, work: Callable[[], Awaitable[Response]]) -> Response:
        if self.key is None:
            return await work()
        request = self.request
        target = f"{request.url.path}?{request.url.query}"
        fingerprint = _fingerprint(request.method, target, await request.body())
        # Held until this transaction ends, that is, until the stored outcome is committed.
        if not await repository.try_lock(self.session, _lock_id(self.org_id, self.key)):
            raise IdempotencyInProgress(
                f"a request with Idempotency-Key {self.key!r} is still being processed; "
                "retry after it completes"
            )
        stored = await repository.find(self.session, self.org_id, self.key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key {self.key!r} was used with a different request; "
                    "a retry must repeat the method, path and body"
                )
            return _replay(stored)
        try:
            async with self.session.begin_nested():
                response = await work()
        except ApiError as error:
            if error.status >= 500:
                raise  # not the request's outcome (the carrier refused, say): a retry may succeed
            # The work was rolled back to the savepoint; its error is the outcome to keep.
            response = error_response(request_id_of(request), error)
        outcome = repository.Outcome(
            fingerprint=fingerprint,
            status_code=response.status_code,
            body=bytes(response.body),
            etag=response.headers.get("etag"),
        )
        await repository.store(self.session, self.org_id, self.key, outcome)
        return response


def _replay(stored: models.IdempotencyKey) -> Response:
    headers = {REPLAYED_HEADER: "true"}
    if stored.etag is not None:
        headers["ETag"] = stored.etag
    return Response(stored.body, stored.status_code, headers=headers, media_type=JSON_CONTENT_TYPE)


async def _idempotency(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=(
                "Makes a retry safe: a request repeated with the same key within 24 hours "
                "gets the first one's response (1 to 255 printable ASCII characters)."
            ),
        ),
        # No example: generated clients and property-based tests would reuse it as one key.
        optional_header(_KEY_PATTERN, minLength=1, maxLength=255),
    ] = None,
) -> Idempotency:
    if idempotency_key is not None and not _KEY_SHAPE.fullmatch(idempotency_key):
        raise InvalidRequest(IDEMPOTENCY_KEY_MESSAGE)
    return Idempotency(request, session, principal.org_id, idempotency_key)


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]
