"""API keys and their organizations: generation, hashing, creation."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.text import SINGLE_LINE_PATTERN
from callingbox_server.domains.keys import repository

KeyMode = Literal["live", "test"]
MAX_ORG_NAME = 200  # as the orgs.name column holds
_SINGLE_LINE = re.compile(SINGLE_LINE_PATTERN)


def clean_org_name(raw: str) -> str:
    """An org name as people mean it: without surrounding spaces, never blank, one line.

    Its case is kept but never tells two orgs apart (see repository.get_or_create_org).
    """
    name = raw.strip()
    if not name:
        raise ValueError("an org name must not be blank")
    if len(name) > MAX_ORG_NAME:
        raise ValueError(f"an org name must be at most {MAX_ORG_NAME} characters")
    if not _SINGLE_LINE.fullmatch(name):
        raise ValueError("an org name must not contain control characters")
    return name


def generate_key(mode: KeyMode) -> str:
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


def hash_key(secret: bytes, key: str) -> bytes:
    return hmac.new(secret, key.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str  # as stored: `--org ACME` finds the org created as "acme"
    org_created: bool
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
    org_id, stored_name, org_created = await repository.get_or_create_org(
        session, clean_org_name(org_name)
    )
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
    return CreatedKey(key.id, org_id, stored_name, org_created, secret, expires_at)
