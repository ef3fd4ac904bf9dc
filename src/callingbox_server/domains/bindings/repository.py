"""Every SQL statement about which numbers are attached to which agents, each scoped by org.

The composite foreign keys on agent_numbers keep every attachment inside one org; the partial
unique index on inbound attachments keeps a number answered by at most one agent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.scoping import org_scoped

A = models.Agent
L = models.AgentNumber


async def insert_link(
    session: AsyncSession,
    org_id: uuid.UUID,
    agent_id: uuid.UUID,
    agent_type: str,
    number_id: uuid.UUID,
) -> bool:
    """Attach; False when the attachment exists, or another inbound agent answers the number.

    The unique index on inbound attachments decides concurrent attaches: ON CONFLICT waits for
    the other transaction and then inserts nothing.
    """
    statement = (
        insert(L)
        .values(agent_id=agent_id, number_id=number_id, org_id=org_id, agent_type=agent_type)
        .on_conflict_do_nothing()
        .returning(L.agent_id)
    )
    return (await session.execute(statement)).first() is not None


async def inbound_holder(
    session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID
) -> uuid.UUID | None:
    """The inbound agent that answers the number, if any."""
    statement = org_scoped(select(L.agent_id), L, org_id).where(
        L.number_id == number_id, L.agent_type == "inbound"
    )
    holder: uuid.UUID | None = await session.scalar(statement)
    return holder


async def attached_number_ids(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID
) -> list[uuid.UUID]:
    """The agent's numbers, in attach order."""
    statement = (
        org_scoped(select(L.number_id), L, org_id).where(L.agent_id == agent_id).order_by(L.seq)
    )
    return list((await session.scalars(statement)).all())


async def attached_agent_ids(
    session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID
) -> list[uuid.UUID]:
    statement = (
        org_scoped(select(L.agent_id), L, org_id)
        .where(L.number_id == number_id)
        .order_by(L.agent_id)
    )
    return list((await session.scalars(statement)).all())


async def delete_link(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, number_id: uuid.UUID
) -> bool:
    statement = (
        org_scoped(delete(L), L, org_id)
        .where(L.agent_id == agent_id, L.number_id == number_id)
        .returning(L.number_id)
    )
    return (await session.execute(statement)).first() is not None


async def delete_links_of_agent(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID
) -> None:
    await session.execute(org_scoped(delete(L), L, org_id).where(L.agent_id == agent_id))


async def delete_links_of_number(
    session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID
) -> list[uuid.UUID]:
    """Detach the number from every agent; returns those agents' ids, in id order."""
    statement = (
        org_scoped(delete(L), L, org_id).where(L.number_id == number_id).returning(L.agent_id)
    )
    return sorted((await session.execute(statement)).scalars().all())


async def lock_agents(
    session: AsyncSession, org_id: uuid.UUID, agent_ids: Sequence[uuid.UUID]
) -> None:
    """Lock agents in id order (the order every multi-agent lock takes, so none deadlock)."""
    if agent_ids:
        statement = (
            org_scoped(select(A.id), A, org_id)
            .where(A.id.in_(agent_ids))
            .order_by(A.id)
            .with_for_update()
        )
        await session.execute(statement)


async def after_detach(
    session: AsyncSession, org_id: uuid.UUID, agent_ids: Sequence[uuid.UUID], number_id: uuid.UUID
) -> None:
    """Advance the agents' ``updated_at`` and, where the detached number was primary, promote
    the earliest-attached of the rest (or none)."""
    if not agent_ids:
        return
    earliest = (
        select(L.number_id)
        .where(L.agent_id == A.id)
        .order_by(L.seq)
        .limit(1)
        .correlate(A)
        .scalar_subquery()
    )
    statement = (
        org_scoped(update(A), A, org_id)
        .where(A.id.in_(agent_ids))
        .values(
            primary_number_id=case(
                (A.primary_number_id == number_id, earliest), else_=A.primary_number_id
            ),
            updated_at=func.statement_timestamp(),
        )
    )
    await session.execute(statement)
