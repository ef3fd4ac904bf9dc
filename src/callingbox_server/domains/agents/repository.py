"""Every SQL statement about agents, each scoped by org (see core.db.scoping)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import Text, bindparam, cast, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import DriverStatement, driver_fetch, for_driver
from callingbox_server.core.db.scoping import org_scoped
from callingbox_server.core.pagination import (
    Cursor,
    KeysetDirection,
    keyset,
    keyset_direction,
    keyset_params,
)
from callingbox_server.domains.agents.schemas import Agent
from callingbox_server.domains.numbers.repository import NUMBER_COLUMNS

A = models.Agent
L = models.AgentNumber
_AGENTS = models.Agent.__table__


async def get(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, *, for_update: bool = False
) -> models.Agent | None:
    statement = org_scoped(select(A), A, org_id).where(A.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    statement = statement.execution_options(populate_existing=True)
    return (await session.scalars(statement)).first()


# Agents as the API shows them: one row per attached number (in attach order), or one row with
# null number columns when none is attached. One statement, so the agent and its numbers come
# from one snapshot without a transaction around them. The columns are the wire schema's fields.
AGENT_FIELDS = tuple(name for name in Agent.model_fields if name != "numbers")
NUMBER_FIELDS = tuple(NUMBER_COLUMNS)
# Sent as their JSON text: an agent's row repeats once per number, its JSON is decoded once.
JSON_FIELDS = ("returns", "tools")
_NUMBER_VIEW = [column.label(f"number_{name}") for name, column in NUMBER_COLUMNS.items()]


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
    org_scoped(select(_AGENTS), _AGENTS.c)
    .where(_AGENTS.c.id == bindparam("agent_id"))
    .subquery("agent")
)


@lru_cache
def _view_page(
    by_type: bool, include_archived: bool, direction: KeysetDirection
) -> DriverStatement:
    """A keyset page of agents, with their numbers."""
    c = _AGENTS.c
    page = org_scoped(select(_AGENTS), c)
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
    org_scoped(select(_AGENTS.c.created_at, _AGENTS.c.id), _AGENTS.c).where(
        _AGENTS.c.id == bindparam("agent_id")
    )
)


async def get_cursor(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, newer: bool
) -> Cursor | None:
    rows = await driver_fetch(session, _CURSOR, {"org_id": org_id, "agent_id": agent_id})
    return Cursor(rows[0]["created_at"], rows[0]["id"], newer) if rows else None


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
        org_scoped(update(A), A, org_id)
        .where(A.id == agent_id)
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
