"""A number's one wire representation: GETs, lists and every mutation response send these bytes.

PostgreSQL renders them (``repository.number_json``, see core.db.wire) in the shape of
``schemas.Number``; a mutation re-reads them in its own transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.pagination import Cursor, page_body
from callingbox_server.domains.numbers import repository


async def read(session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID) -> bytes | None:
    """The number as stored now: in a transaction, as that transaction sees it."""
    return await repository.get_body(session, org_id, number_id)


async def page(
    session: AsyncSession, org_id: uuid.UUID, status: str, cursor: Cursor | None, limit: int
) -> bytes:
    bodies = await repository.list_page(session, org_id, status, cursor, limit)
    return page_body(bodies, cursor, limit)
