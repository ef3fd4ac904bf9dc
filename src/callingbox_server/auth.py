"""API keys: generation, hashing, and the bearer dependency every /v1 route uses."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, or_, select

from callingbox_server import models
from callingbox_server.db import SessionDep
from callingbox_server.errors import Unauthorized

KeyMode = Literal["live", "test"]
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


def generate_key(mode: KeyMode) -> str:
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


def hash_key(secret: bytes, key: str) -> bytes:
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()


async def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    # Every failure raises the same error: callers learn nothing about why a key was refused.
    # The lookup is by HMAC through a unique index, so no comparison ever runs on the secret.
    if credentials is None or not _KEY_SHAPE.fullmatch(credentials.credentials):
        raise Unauthorized()
    digest = hash_key(request.app.state.key_hash_secret, credentials.credentials)
    statement = select(models.ApiKey.id, models.ApiKey.org_id, models.ApiKey.mode).where(
        models.ApiKey.key_hash == digest,
        models.ApiKey.revoked_at.is_(None),
        or_(models.ApiKey.expires_at.is_(None), models.ApiKey.expires_at > func.now()),
    )
    row = (await session.execute(statement)).first()
    if row is None:
        raise Unauthorized()
    return Principal(key_id=row.id, org_id=row.org_id, mode=row.mode)


PrincipalDep = Annotated[Principal, Depends(authenticate)]
