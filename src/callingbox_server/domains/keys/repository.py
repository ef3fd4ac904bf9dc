"""Every SQL statement about API keys and organizations.

Keys are looked up across orgs by design: a key is what names its org.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import driver_fetch, for_driver

_K = models.ApiKey.__table__.c
_FIND_USABLE = for_driver(
    select(_K.id, _K.org_id, _K.mode).where(
        _K.key_hash == bindparam("key_hash"),
        _K.revoked_at.is_(None),
        or_(_K.expires_at.is_(None), _K.expires_at > func.now()),
    )
)


async def find_usable(
    session: AsyncSession, key_hash: bytes
) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """(key id, org id, mode) of the key with this hash, unless it is revoked or expired.

    Looked up through the unique index on the hash: no comparison ever runs on the secret.
    Every request runs it, so it goes to the driver directly (see db.driver_fetch).
    """
    rows = await driver_fetch(session, _FIND_USABLE, {"key_hash": key_hash})
    return (rows[0]["id"], rows[0]["org_id"], rows[0]["mode"]) if rows else None


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


async def now(session: AsyncSession) -> datetime:
    """The database's clock, which every expiry is compared with."""
    return (await session.execute(select(func.now()))).scalar_one()


async def insert_key(session: AsyncSession, key: models.ApiKey) -> None:
    session.add(key)
    await session.flush()


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
