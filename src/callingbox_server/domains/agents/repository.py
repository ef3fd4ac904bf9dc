"""Every SQL statement about agents, each scoped by org (see core.db.scoping)."""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import DriverStatement, Reads, driver_fetch, for_driver
from callingbox_server.core.db.scoping import org_scoped
from callingbox_server.core.db.wire import EMPTY_ARRAY, as_bytes, json_of, wire_column
from callingbox_server.core.pagination import (
    Cursor,
    KeysetDirection,
    keyset,
    keyset_direction,
    keyset_params,
)
from callingbox_server.core.principal import Principal
from callingbox_server.domains.agents.schemas import Agent
from callingbox_server.domains.keys import repository as keys_repository
from callingbox_server.domains.numbers.repository import number_json

A = models.Agent
L = models.AgentNumber
N = models.Number
_AGENTS = models.Agent.__table__


async def get(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, *, for_update: bool = False
) -> models.Agent | None:
    statement = org_scoped(select(A), A, org_id).where(A.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    statement = statement.execution_options(populate_existing=True)
    return (await session.scalars(statement)).first()


def _numbers_json(agent_id: Any) -> ColumnElement[Any]:
    """The agent's numbers as a JSON array of their wire JSON, in attach order."""
    ordered = func.array_agg(aggregate_order_by(number_json(), L.seq))
    return (
        select(func.coalesce(func.array_to_json(ordered), EMPTY_ARRAY))
        .select_from(L)
        .join(N, N.id == L.number_id)
        .where(L.agent_id == agent_id)
        .correlate(A)
        .scalar_subquery()
    )


def _agent_json() -> ColumnElement[Any]:
    """An agent as its wire JSON, for a query whose FROM has ``agents``: one column per field of
    ``schemas.Agent``, in its order, rendered by PostgreSQL (see core.db.wire)."""
    wire = select(
        *(
            _numbers_json(A.id).label(name)
            if name == "numbers"
            else wire_column(Agent, name, getattr(A, name))
            for name in Agent.model_fields
        )
    )
    return json_of(wire.correlate(A), "agent", lateral=True)


def _select_bodies() -> Select[Any]:
    return select(as_bytes(_agent_json()).label("body")).select_from(A)


# Reads run on the driver (see driver_fetch): one statement each, so the agent and its numbers
# come from one snapshot without a transaction around them.
_ONE = org_scoped(_select_bodies(), A).where(A.id == bindparam("agent_id"))
_VIEW_ONE = for_driver(_ONE)
# The same, for the org of the caller's key, checked in the same statement.
_VIEW_ONE_WITH_KEY = keys_repository.with_usable_key(_ONE)


@lru_cache
def _view_page(
    by_type: bool, include_archived: bool, direction: KeysetDirection
) -> DriverStatement:
    """A keyset page of agents, as their wire JSON."""
    page = org_scoped(_select_bodies(), A)
    if by_type:
        page = page.where(A.type == bindparam("type"))
    if not include_archived:
        page = page.where(A.archived_at.is_(None))
    c = _AGENTS.c
    return for_driver(keyset(page, c.created_at, c.id, direction))


async def get_body(reads: Reads, org_id: uuid.UUID, agent_id: uuid.UUID) -> bytes | None:
    """The agent's wire JSON; None when the org has no such agent."""
    rows = await driver_fetch(reads, _VIEW_ONE, {"org_id": org_id, "agent_id": agent_id})
    return rows[0]["body"] if rows else None


async def get_body_with_key(
    reads: Reads, key_hash: bytes, agent_id: uuid.UUID
) -> tuple[Principal, bytes | None] | None:
    """The caller and the agent's wire JSON (None when its org has no such agent); None when
    the key is not usable."""
    return await keys_repository.fetch_with_key(
        reads, _VIEW_ONE_WITH_KEY, key_hash, {"agent_id": agent_id}
    )


async def list_bodies(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    agent_type: str | None,
    include_archived: bool,
    cursor: Cursor | None,
    limit: int,
) -> list[bytes]:
    """The wire JSON of up to ``limit`` + 1 agents, in page order."""
    statement = _view_page(agent_type is not None, include_archived, keyset_direction(cursor))
    params = {"org_id": org_id, "type": agent_type, **keyset_params(cursor, limit)}
    return [row["body"] for row in await driver_fetch(session, statement, params)]


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


async def insert_agent(session: AsyncSession, agent: models.Agent) -> None:
    """Insert a new agent, built in full but for what the server fills in (timestamps, the
    default voicemail action), on the session's connection without the ORM's unit of work (a
    third of a create's CPU through it); nothing of it is kept in the session."""
    values = {
        column.key: value
        for column in _AGENTS.c
        if (value := getattr(agent, column.key)) is not None
    }
    await driver_fetch(session, _insert(frozenset(values)), values)


@lru_cache(maxsize=64)
def _insert(columns: frozenset[str]) -> DriverStatement:
    """The INSERT of one set of columns, built once: there are few such sets."""
    return for_driver(insert(A).values({name: bindparam(name) for name in sorted(columns)}))


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
