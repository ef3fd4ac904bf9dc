"""Every SQL statement about stored idempotency outcomes, each scoped by org."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.scoping import org_scoped

K = models.IdempotencyKey
RETENTION = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Outcome:
    fingerprint: bytes
    status_code: int
    body: bytes
    etag: str | None


async def try_lock(session: AsyncSession, lock_id: int) -> bool:
    """A transaction-scoped advisory lock: held until the stored outcome is committed."""
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(lock_id))))


async def find(session: AsyncSession, org_id: uuid.UUID, key: str) -> models.IdempotencyKey | None:
    # A key past its retention is gone, whether or not the pruner has deleted it yet.
    statement = org_scoped(select(K), K, org_id).where(
        K.key == key, K.created_at >= func.statement_timestamp() - RETENTION
    )
    stored: models.IdempotencyKey | None = await session.scalar(statement)
    return stored


async def store(session: AsyncSession, org_id: uuid.UUID, key: str, outcome: Outcome) -> None:
    values = {
        "fingerprint": outcome.fingerprint,
        "status_code": outcome.status_code,
        "body": outcome.body,
        "etag": outcome.etag,
        "created_at": func.statement_timestamp(),
    }
    statement = insert(K).values(org_id=org_id, key=key, **values)
    # Replaces an expired key that the pruner has not deleted yet.
    await session.execute(
        statement.on_conflict_do_update(index_elements=[K.org_id, K.key], set_=values)
    )


async def prune(connection: AsyncConnection, retention: timedelta = RETENTION) -> int:
    """Delete the keys of every org older than ``retention``; returns how many went."""
    result = await connection.execute(
        delete(K).where(K.created_at < func.statement_timestamp() - retention)
    )
    return result.rowcount
