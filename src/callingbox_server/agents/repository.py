"""Every SQL statement about agents and their attached numbers, each scoped by org.

Statements on attachments are keyed by an agent or number already found in the caller's org;
the composite foreign keys on agent_numbers keep every attachment inside one org.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import Row, Text, bindparam, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server import models
from callingbox_server.common import (
    Cursor,
    KeysetDirection,
    keyset,
    keyset_direction,
    keyset_params,
)
from callingbox_server.db import DriverStatement, driver_fetch, for_driver
from callingbox_server.numbers.repository import NUMBER_COLUMNS, select_numbers

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


# Agents as the API shows them: one row per attached number (in attach order), or one row with
# null number columns when none is attached. One statement, so the agent and its numbers come
# from one snapshot without a transaction around them.
AGENT_FIELDS = (
    "id",
    "org_id",
    "user_id",
    "name",
    "type",
    "persona",
    "instructions",
    "voice",
    "language",
    "returns",
    "tools",
    "webhook_url",
    "voicemail_action",
    "primary_number_id",
    "archived_at",
    "created_at",
    "updated_at",
)
NUMBER_FIELDS = (
    "id",
    "e164",
    "friendly_name",
    "country_code",
    "number_type",
    "status",
    "monthly_cost_cents",
    "purchased_at",
    "inbound_agent_id",
    "outbound_agent_ids",
)
_NUMBER_VIEW: list[Any] = [
    column.label(f"number_{name}")
    for column, name in zip(NUMBER_COLUMNS, NUMBER_FIELDS, strict=True)
]
_AGENTS = models.Agent.__table__


# Sent as their JSON text: an agent's row repeats once per number, its JSON is decoded once.
JSON_FIELDS = ("returns", "tools")


def _with_numbers(agents: Any, *order: Any) -> DriverStatement:
    columns = [
        cast(agents.c[name], Text).label(name) if name in JSON_FIELDS else agents.c[name]
        for name in AGENT_FIELDS
    ]
    statement = (
        select(*columns, *_NUMBER_VIEW)
        .select_from(agents)
        .outerjoin(L, L.agent_id == agents.c.id)
        .outerjoin(models.Number, models.Number.id == L.number_id)
        .order_by(*order, L.seq)
    )
    return for_driver(statement)


_VIEW_ONE = _with_numbers(
    select(_AGENTS)
    .where(_AGENTS.c.org_id == bindparam("org_id"), _AGENTS.c.id == bindparam("agent_id"))
    .subquery("agent")
)


@lru_cache
def _view_page(
    by_type: bool, include_archived: bool, direction: KeysetDirection
) -> DriverStatement:
    """A keyset page of agents, with their numbers."""
    c = _AGENTS.c
    page = select(_AGENTS).where(c.org_id == bindparam("org_id"))
    if by_type:
        page = page.where(c.type == bindparam("type"))
    if not include_archived:
        page = page.where(c.archived_at.is_(None))
    agents = keyset(page, c.created_at, c.id, direction).subquery("agent")
    if direction == "newer":
        return _with_numbers(agents, agents.c.created_at, agents.c.id)
    return _with_numbers(agents, agents.c.created_at.desc(), agents.c.id.desc())


async def get_view(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID
) -> Sequence[asyncpg.Record]:
    """The agent's rows (see AGENT_FIELDS); none when the org has no such agent."""
    return await driver_fetch(session, _VIEW_ONE, {"org_id": org_id, "agent_id": agent_id})


async def list_view(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    agent_type: str | None,
    include_archived: bool,
    cursor: Cursor | None,
    limit: int,
) -> Sequence[asyncpg.Record]:
    """Rows of up to ``limit`` + 1 agents (see AGENT_FIELDS), in page order."""
    statement = _view_page(agent_type is not None, include_archived, keyset_direction(cursor))
    params = {"org_id": org_id, "type": agent_type, **keyset_params(cursor, limit)}
    return await driver_fetch(session, statement, params)


_CURSOR = for_driver(
    select(_AGENTS.c.created_at, _AGENTS.c.id).where(
        _AGENTS.c.org_id == bindparam("org_id"), _AGENTS.c.id == bindparam("agent_id")
    )
)


async def get_cursor(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, newer: bool
) -> Cursor | None:
    rows = await driver_fetch(session, _CURSOR, {"org_id": org_id, "agent_id": agent_id})
    return Cursor(rows[0]["created_at"], rows[0]["id"], newer) if rows else None


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
    """Insert and read back the server's defaults (timestamps) in one INSERT ... RETURNING,
    rather than a flush and then a refresh."""
    values = {
        column.key: value
        for column in _AGENTS.c
        if (value := getattr(agent, column.key)) is not None
    }
    statement = insert(A).values(values).returning(A)
    return (await session.scalars(statement)).one()


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
