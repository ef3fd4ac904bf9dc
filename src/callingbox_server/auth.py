"""The bearer dependency every /v1 route uses: who is calling, and for which org."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callingbox_server import keys
from callingbox_server.db import SessionDep
from callingbox_server.errors import Unauthorized

_KEY_SHAPE = re.compile(r"sk_(?:live|test)_[A-Za-z0-9_\-]{32,128}")

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`sk_live_...` or `sk_test_...`) as `Authorization: Bearer <key>`.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, and the org every query is scoped to."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    mode: str


async def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    # Every failure raises the same error: callers learn nothing about why a key was refused.
    # The lookup is by HMAC through a unique index, so no comparison ever runs on the secret.
    if credentials is None or not _KEY_SHAPE.fullmatch(credentials.credentials):
        raise Unauthorized()
    digest = keys.hash_key(request.app.state.key_hash_secret, credentials.credentials)
    found = await keys.find_usable(session, digest)
    if found is None:
        raise Unauthorized()
    key_id, org_id, mode = found
    request.state.org_id = org_id  # for the request's log line
    return Principal(key_id=key_id, org_id=org_id, mode=mode)


PrincipalDep = Annotated[Principal, Depends(authenticate)]
