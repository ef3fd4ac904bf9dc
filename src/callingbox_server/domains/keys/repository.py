"""Every SQL statement about API keys and organizations.

Keys are looked up across orgs by design: a key is what names its org.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.visitors import ExternallyTraversible, replacement_traverse

from callingbox_server.core import models
from callingbox_server.core.db.driver import DriverStatement, Reads, driver_fetch, for_driver
from callingbox_server.core.db.scoping import ORG_ID
from callingbox_server.core.principal import Principal, known_orgs

_K = models.ApiKey.__table__.c
_USABLE = select(_K.id, _K.org_id, _K.mode).where(
    _K.key_hash == bindparam("key_hash"),
    _K.revoked_at.is_(None),
    or_(_K.expires_at.is_(None), _K.expires_at > func.now()),
)
_FIND_USABLE = for_driver(_USABLE)


async def find_usable(
    session: AsyncSession, key_hash: bytes
) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """(key id, org id, mode) of the key with this hash, unless it is revoked or expired.

    Looked up through the unique index on the hash: no comparison ever runs on the secret.
    Every request runs it, so it goes to the driver directly (see db.driver_fetch).
    """
    rows = await driver_fetch(session, _FIND_USABLE, {"key_hash": key_hash})
    if not rows:
        return None
    known_orgs.remember(key_hash, rows[0]["org_id"])
    return (rows[0]["id"], rows[0]["org_id"], rows[0]["mode"])


def with_usable_key(value: Select[Any]) -> DriverStatement:
    """``value`` (one column, at most one row, org-scoped on the ``org_id`` parameter) for the
    org of the usable key with hash ``key_hash``, in one statement with the key check."""
    key = _USABLE.subquery("k")

    def org_of_key(element: ExternallyTraversible, **_: Any) -> ExternallyTraversible | None:
        is_org = isinstance(element, BindParameter) and element.key == ORG_ID.key
        return key.c.org_id if is_org else None

    scoped = replacement_traverse(value, {}, org_of_key)
    assert isinstance(scoped, Select)
    return for_driver(
        select(key.c.id, key.c.org_id, key.c.mode, scoped.scalar_subquery().label("value"))
    )


async def fetch_with_key(
    reads: Reads, statement: DriverStatement, key_hash: bytes, params: dict[str, Any]
) -> tuple[Principal, Any] | None:
    """The caller and the value of ``statement`` (see ``with_usable_key``; None when nothing
    was found); None when the key is not usable (it is forgotten: see ``known_orgs``)."""
    rows = await driver_fetch(reads, statement, {"key_hash": key_hash, **params})
    if not rows:
        known_orgs.forget(key_hash)
        return None
    row = rows[0]
    return Principal(key_id=row["id"], org_id=row["org_id"], mode=row["mode"]), row["value"]


async def get_or_create_org(session: AsyncSession, name: str) -> tuple[uuid.UUID, str, bool]:
    """(id, name as stored, whether it was created just now) of the org called ``name``."""
    inserted = await session.execute(
        insert(models.Org)
        .values(id=uuid.uuid4(), name=name)
        # Unique whatever its case (the index is on lower(name)): "Acme" is "acme".
        .on_conflict_do_nothing(index_elements=[func.lower(models.Org.name)])
        .returning(models.Org.id)
    )
    org_id = inserted.scalar_one_or_none()
    if org_id is not None:
        return org_id, name, True
    found = await find_org(session, name)
    assert found is not None, "the insert conflicted with it"
    return found[0], found[1], False


async def find_org(session: AsyncSession, name: str) -> tuple[uuid.UUID, str] | None:
    """(id, name as stored) of the org called ``name``, in any case."""
    same_name = func.lower(models.Org.name) == func.lower(name)
    statement = select(models.Org.id, models.Org.name).where(same_name)
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else (row.id, row.name)


async def now(session: AsyncSession) -> datetime:
    """The database's clock, which every expiry is compared with."""
    return (await session.execute(select(func.now()))).scalar_one()


async def insert_key(session: AsyncSession, key: models.ApiKey) -> None:
    session.add(key)
    await session.flush()


ListedKey = tuple[models.ApiKey, str]  # a key and its org's name


async def list_keys(session: AsyncSession, org_id: uuid.UUID | None = None) -> list[ListedKey]:
    statement = (
        select(models.ApiKey, models.Org.name)
        .join(models.Org, models.Org.id == models.ApiKey.org_id)
        .order_by(models.Org.name, models.ApiKey.created_at)
    )
    if org_id is not None:
        statement = statement.where(models.ApiKey.org_id == org_id)
    return [(key, org) for key, org in (await session.execute(statement)).all()]


async def find_key_id(session: AsyncSession, key_hash: bytes) -> uuid.UUID | None:
    """The id of the key with this hash, in any state (``keys revoke`` given the key itself)."""
    statement = select(models.ApiKey.id).where(models.ApiKey.key_hash == key_hash)
    return (await session.execute(statement)).scalar_one_or_none()


@dataclass(frozen=True)
class Revocation:
    revoked_at: datetime
    already: bool  # it was revoked before: nothing changed


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> Revocation | None:
    """Revoke a key from the next request on; None when no such key exists. Revoking twice
    keeps the first time."""
    locked = select(models.ApiKey.revoked_at).where(models.ApiKey.id == key_id).with_for_update()
    row = (await session.execute(locked)).one_or_none()
    if row is None:
        return None
    if row.revoked_at is not None:
        return Revocation(row.revoked_at, already=True)
    revoked_at = await now(session)
    await session.execute(
        update(models.ApiKey).where(models.ApiKey.id == key_id).values(revoked_at=revoked_at)
    )
    return Revocation(revoked_at, already=False)


async def count_orgs(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(models.Org))).scalar_one()
