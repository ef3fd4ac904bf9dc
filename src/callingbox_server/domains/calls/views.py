"""A call's one wire representation (and its transcript's): GETs, lists, every mutation's
response and every event's ``data.call`` are these bytes, rendered by PostgreSQL from one column
list (``repository.wire_sql`` and the reads beside it), so an ETag is a digest of what was sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.pagination import Cursor, page_body
from callingbox_server.domains.calls import repository


async def read(session: AsyncSession, org_id: uuid.UUID, call_id: uuid.UUID) -> bytes | None:
    return await repository.get_body(session, org_id, call_id)


async def transcript(session: AsyncSession, org_id: uuid.UUID, call_id: uuid.UUID) -> bytes | None:
    return await repository.get_transcript(session, org_id, call_id)


async def page(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    filters: Mapping[str, Any],
    cursor: Cursor | None,
    limit: int,
) -> bytes:
    bodies = await repository.list_bodies(
        session, org_id, filters=filters, cursor=cursor, limit=limit
    )
    return page_body(bodies, cursor, limit)
