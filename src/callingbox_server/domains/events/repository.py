"""Writing the event outbox, each event in the transaction of the change it reports."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.domains.events.types import CHANNEL, EventType

E = models.Event


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
    await session.execute(
        insert(E).values(id=event_id, org_id=org_id, type=type, call_id=call_id, data=data)
    )
    await session.execute(select(func.pg_notify(CHANNEL, str(event_id))))
    return event_id
