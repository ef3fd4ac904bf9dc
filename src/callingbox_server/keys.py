"""Organizations and their API keys, as the ``keys`` commands manage them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server import models
from callingbox_server.auth import KeyMode, generate_key, hash_key


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    org_id: uuid.UUID
    org_name: str
    secret: str
    expires_at: datetime | None


async def get_or_create_org(session: AsyncSession, name: str) -> uuid.UUID:
    inserted = await session.execute(
        insert(models.Org)
        .values(id=uuid.uuid4(), name=name)
        .on_conflict_do_nothing(index_elements=[models.Org.name])
        .returning(models.Org.id)
    )
    org_id = inserted.scalar_one_or_none()
    if org_id is not None:
        return org_id
    return (
        await session.execute(select(models.Org.id).where(models.Org.name == name))
    ).scalar_one()


async def create_key(
    session: AsyncSession,
    *,
    org_name: str,
    hash_secret: bytes,
    mode: KeyMode = "live",
    name: str | None = None,
    expires_in_days: int | None = None,
) -> CreatedKey:
    org_id = await get_or_create_org(session, org_name)
    secret = generate_key(mode)
    expires_at = None
    if expires_in_days is not None:
        now = (await session.execute(select(func.now()))).scalar_one()
        expires_at = now + timedelta(days=expires_in_days)
    key = models.ApiKey(
        id=uuid.uuid4(),
        org_id=org_id,
        name=name,
        mode=mode,
        key_hash=hash_key(hash_secret, secret),
        last4=secret[-4:],
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return CreatedKey(key.id, org_id, org_name, secret, expires_at)


async def list_keys(
    session: AsyncSession, org_name: str | None = None
) -> list[tuple[models.ApiKey, str]]:
    statement = (
        select(models.ApiKey, models.Org.name)
        .join(models.Org, models.Org.id == models.ApiKey.org_id)
        .order_by(models.Org.name, models.ApiKey.created_at)
    )
    if org_name is not None:
        statement = statement.where(models.Org.name == org_name)
    return [(key, org) for key, org in (await session.execute(statement)).all()]


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> bool:
    """Revoke a key; False when no such key exists. Revoking twice keeps the first time."""
    result = await session.execute(
        update(models.ApiKey)
        .where(models.ApiKey.id == key_id)
        .values(revoked_at=func.coalesce(models.ApiKey.revoked_at, func.now()))
        .returning(models.ApiKey.id)
    )
    return result.scalar_one_or_none() is not None


async def count_orgs(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(models.Org))).scalar_one()
