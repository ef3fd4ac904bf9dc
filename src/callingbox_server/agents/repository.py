"""Every SQL statement about agents and their attached numbers, each scoped by org.

Statements on attachments are keyed by an agent or number already found in the caller's org;
the composite foreign keys on agent_numbers keep every attachment inside one org.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server import models
from callingbox_server.common import Cursor, keyset
from callingbox_server.numbers.repository import select_numbers

A = models.Agent
L = models.AgentNumber


async def get(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, *, for_update: bool = False
) -> models.Agent | None:
    statement = select(A).where(A.org_id == org_id, A.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    statement = statement.execution_options(populate_existing=True)
    return (await session.scalars(statement)).first()


async def get_cursor(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, newer: bool
) -> Cursor | None:
    statement = select(A.created_at, A.id).where(A.org_id == org_id, A.id == agent_id)
    row = (await session.execute(statement)).first()
    return None if row is None else Cursor(row.created_at, row.id, newer)


async def list_page(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    agent_type: str | None,
    include_archived: bool,
    cursor: Cursor | None,
    limit: int,
) -> Sequence[models.Agent]:
    statement = select(A).where(A.org_id == org_id)
    if agent_type is not None:
        statement = statement.where(A.type == agent_type)
    if not include_archived:
        statement = statement.where(A.archived_at.is_(None))
    statement = keyset(statement, A.created_at, A.id, cursor, limit)
    return (await session.scalars(statement)).all()


async def numbers_of(
    session: AsyncSession, agent_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Row[Any]]]:
    """The attached numbers of each agent, in attach order, in one query for a whole page."""
    if not agent_ids:
        return {}
    statement = (
        select_numbers()
        .add_columns(L.agent_id.label("attached_to"))
        .join(L, L.number_id == models.Number.id)
        .where(L.agent_id.in_(agent_ids))
        .order_by(L.seq)
    )
    by_agent: dict[uuid.UUID, list[Row[Any]]] = defaultdict(list)
    for row in (await session.execute(statement)).all():
        by_agent[row.attached_to].append(row)
    return by_agent


async def insert_agent(session: AsyncSession, agent: models.Agent) -> models.Agent:
    session.add(agent)
    await session.flush()
    await session.refresh(agent)
    return agent


async def update_agent(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, values: dict[str, Any]
) -> models.Agent:
    """Write the given columns and advance ``updated_at``; returns the agent as stored."""
    statement = (
        update(A)
        .where(A.org_id == org_id, A.id == agent_id)
        .values(**values, updated_at=func.statement_timestamp())
        .returning(A)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def archive(session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID) -> models.Agent:
    now = func.statement_timestamp()
    return await update_agent(
        session, org_id, agent_id, {"archived_at": now, "primary_number_id": None}
    )


@dataclass(frozen=True, slots=True)
class Attached:
    inserted: bool
    inbound_holder: uuid.UUID | None = None


async def attach(session: AsyncSession, agent: models.Agent, number_id: uuid.UUID) -> Attached:
    """Attach a number. ``inserted`` is False when it was attached already, or when another
    inbound agent (``inbound_holder``) answers it.

    The unique index on inbound attachments decides concurrent attaches: ON CONFLICT waits for
    the other transaction and then inserts nothing, and the holder is read back.
    """
    statement = (
        insert(L)
        .values(agent_id=agent.id, number_id=number_id, org_id=agent.org_id, agent_type=agent.type)
        .on_conflict_do_nothing()
        .returning(L.agent_id)
    )
    while True:
        if (await session.execute(statement)).first() is not None:
            return Attached(inserted=True)
        if agent.type == "outbound":
            return Attached(inserted=False)
        holder = await session.scalar(
            select(L.agent_id).where(L.number_id == number_id, L.agent_type == "inbound")
        )
        if holder is not None:
            return Attached(inserted=False, inbound_holder=None if holder == agent.id else holder)
        # The holder let go between our insert and our read: try the insert again.


async def attached_number_ids(session: AsyncSession, agent_id: uuid.UUID) -> list[uuid.UUID]:
    statement = select(L.number_id).where(L.agent_id == agent_id).order_by(L.seq)
    return list((await session.scalars(statement)).all())


async def detach(session: AsyncSession, agent_id: uuid.UUID, number_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(L).where(L.agent_id == agent_id, L.number_id == number_id).returning(L.number_id)
    )
    return result.first() is not None


async def detach_all(session: AsyncSession, agent_id: uuid.UUID) -> None:
    await session.execute(delete(L).where(L.agent_id == agent_id))


async def lock_agents(session: AsyncSession, agent_ids: Sequence[uuid.UUID]) -> None:
    """Lock agents in id order (the order every multi-agent lock takes, so none deadlock)."""
    if agent_ids:
        statement = select(A.id).where(A.id.in_(agent_ids)).order_by(A.id).with_for_update()
        await session.execute(statement)
