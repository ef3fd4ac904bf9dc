"""Writing the event outbox, each event in the transaction of the change it reports."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import driver_fetch, for_driver
from callingbox_server.domains.events.types import CHANNEL, EventType

E = models.Event

# The row and its NOTIFY in one statement (one round trip), compiled once and run on the
# session's asyncpg connection (core.db.driver), without SQLAlchemy's execution layers.
_inserted = (
    insert(E)
    .values(
        id=bindparam("id"),
        org_id=bindparam("org_id"),
        type=bindparam("type"),
        call_id=bindparam("call_id"),
        data=bindparam("data"),
    )
    .returning(E.id)
    .cte("inserted")
)
_RECORD = for_driver(
    select(func.pg_notify(CHANNEL, cast(_inserted.c.id, Text))).select_from(_inserted)
)


async def record(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    type: EventType,
    data: dict[str, Any],
    call_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write one event in the session's transaction; it exists, and wakes listeners on
    ``CHANNEL``, only if that transaction commits (PostgreSQL sends NOTIFY at commit)."""
    event_id = uuid.uuid4()
    params = {"id": event_id, "org_id": org_id, "type": type, "call_id": call_id, "data": data}
    await driver_fetch(session, _RECORD, params)
    return event_id
