"""An agent's one wire representation: GETs, lists and every mutation response send these bytes.

PostgreSQL renders them (``repository._agent_json``, see core.db.wire) in the shape of
``schemas.Agent``, numbers included; a mutation re-reads them in its own transaction, so a GET's
ETag and an If-Match comparison are digests of the same bytes.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.db.driver import Reads
from callingbox_server.core.pagination import Cursor, page_body
from callingbox_server.core.principal import Principal
from callingbox_server.domains.agents import repository


async def read(reads: Reads, org_id: uuid.UUID, agent_id: uuid.UUID) -> bytes | None:
    """The agent as stored now: in a transaction, as that transaction sees it."""
    return await repository.get_body(reads, org_id, agent_id)


async def read_with_key(
    reads: Reads, key_hash: bytes, agent_id: uuid.UUID
) -> tuple[Principal, bytes | None] | None:
    """The same, for the org of the key with this hash, checked in the same statement: None
    when the key is not usable, else the caller and the agent (None when there is none)."""
    return await repository.get_body_with_key(reads, key_hash, agent_id)


async def page(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    agent_type: str | None,
    include_archived: bool,
    cursor: Cursor | None,
    limit: int,
) -> bytes:
    bodies = await repository.list_bodies(
        session,
        org_id,
        agent_type=agent_type,
        include_archived=include_archived,
        cursor=cursor,
        limit=limit,
    )
    return page_body(bodies, cursor, limit)
