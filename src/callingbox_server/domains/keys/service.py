"""API keys and their organizations: generation, hashing, creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.domains.keys import repository

KeyMode = Literal["live", "test"]


def generate_key(mode: KeyMode) -> str:
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


def hash_key(secret: bytes, key: str) -> bytes:
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str
    secret: str
    expires_at: datetime | None


async def create_key(
    session: AsyncSession,
    *,
    org_name: str,
    hash_secret: bytes,
    mode: KeyMode = "live",
    name: str | None = None,
    expires_in_days: int | None = None,
) -> CreatedKey:
    org_id = await repository.get_or_create_org(session, org_name)
    secret = generate_key(mode)
    expires_at = None
    if expires_in_days is not None:
        expires_at = await repository.now(session) + timedelta(days=expires_in_days)
    key = models.ApiKey(
        id=uuid.uuid4(),
        org_id=org_id,
        name=name,
        mode=mode,
        key_hash=hash_key(hash_secret, secret),
        last4=secret[-4:],
        expires_at=expires_at,
    )
    await repository.insert_key(session, key)
    return CreatedKey(key.id, org_id, org_name, secret, expires_at)
