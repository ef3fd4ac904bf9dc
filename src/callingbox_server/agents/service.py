"""The agent rules that span tables: creating with numbers, binding, promotion, archiving."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server import models
from callingbox_server.agents import repository, schemas
from callingbox_server.auth import Principal
from callingbox_server.common import Page, page_of, resolve_cursor
from callingbox_server.errors import AgentArchived, InvalidRequest, NotFound, NumberInUse
from callingbox_server.numbers import repository as numbers_repository
from callingbox_server.numbers.schemas import Number
from callingbox_server.preconditions import IfMatch, require_match

_SCALAR_FIELDS = ("name", "persona", "instructions", "voice", "language", "webhook_url")


async def render(session: AsyncSession, agents: Sequence[models.Agent]) -> list[schemas.Agent]:
    numbers = await repository.numbers_of(session, [agent.id for agent in agents])
    return [
        schemas.Agent(
            id=agent.id,
            org_id=agent.org_id,
            user_id=agent.user_id,
            name=agent.name,
            type=agent.type,  # type: ignore[arg-type]  # the check constraint keeps it valid
            persona=agent.persona,
            instructions=agent.instructions,
            voice=agent.voice,
            language=agent.language,
            returns=agent.returns,
            tools=agent.tools,
            webhook_url=agent.webhook_url,
            voicemail_action=agent.voicemail_action,  # type: ignore[arg-type]
            primary_number_id=agent.primary_number_id,
            archived_at=agent.archived_at,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
            numbers=[Number.model_validate(row) for row in numbers.get(agent.id, [])],
        )
        for agent in agents
    ]


def render_rows(rows: Sequence[asyncpg.Record]) -> list[schemas.Agent]:
    """Agents from the rows of repository.get_view or list_view, in their order."""
    agents: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        agent = agents.get(row["id"])
        if agent is None:
            agent = agents[row["id"]] = {name: row[name] for name in repository.AGENT_FIELDS}
            for name in repository.JSON_FIELDS:
                if agent[name] is not None:
                    agent[name] = pydantic_core.from_json(agent[name])
            agent["numbers"] = []
        if row["number_id"] is not None:
            agent["numbers"].append(
                {name: row[f"number_{name}"] for name in repository.NUMBER_FIELDS}
            )
    return [schemas.Agent.model_validate(agent) for agent in agents.values()]


async def _render_one(session: AsyncSession, agent: models.Agent) -> schemas.Agent:
    return (await render(session, [agent]))[0]


def _not_found(agent_id: uuid.UUID) -> NotFound:
    return NotFound(f"agent {agent_id} not found")


def _archived(agent_id: uuid.UUID) -> AgentArchived:
    return AgentArchived(f"agent {agent_id} is archived")


async def _require(
    session: AsyncSession,
    agent: models.Agent | None,
    agent_id: uuid.UUID,
    if_match: IfMatch | None,
    *,
    mutable: bool = True,
) -> models.Agent:
    """The checks before any change, in this order: 404, then 412, then 409 archived."""
    if agent is None:
        raise _not_found(agent_id)
    if if_match is not None:
        require_match(if_match, await _render_one(session, agent), f"agent {agent_id}")
    if mutable and agent.archived_at is not None:
        raise _archived(agent_id)
    return agent


async def _get_mutable(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    if_match: IfMatch | None = None,
) -> models.Agent:
    agent = await repository.get(session, principal.org_id, agent_id, for_update=True)
    return await _require(session, agent, agent_id, if_match)


def _stored(body: schemas.AgentFields, field: str) -> Any:
    """The column value for a request field (tools and returns are stored as sent, as JSON)."""
    if field == "tools":
        tools = body.tools
        return (
            None if tools is None else [t.model_dump(mode="json", exclude_none=True) for t in tools]
        )
    return getattr(body, field)


async def get_agent(
    session: AsyncSession, principal: Principal, agent_id: uuid.UUID
) -> schemas.Agent:
    rows = await repository.get_view(session, principal.org_id, agent_id)
    if not rows:
        raise _not_found(agent_id)
    return render_rows(rows)[0]


async def list_agents(
    session: AsyncSession, principal: Principal, query: schemas.AgentListQuery
) -> Page[schemas.Agent]:
    cursor = await resolve_cursor(
        query,
        "agent",
        lambda agent_id, newer: repository.get_cursor(session, principal.org_id, agent_id, newer),
    )
    rows = await repository.list_view(
        session,
        principal.org_id,
        agent_type=query.type,
        include_archived=query.include_archived,
        cursor=cursor,
        limit=query.limit,
    )
    agents, has_more = page_of(render_rows(rows), cursor, query.limit)
    return Page[schemas.Agent](data=agents, has_more=has_more)


async def create_agent(
    session: AsyncSession, principal: Principal, body: schemas.AgentCreate
) -> schemas.Agent:
    number_ids = body.number_ids or []
    found = await numbers_repository.lock_active(
        session, principal.org_id, number_ids, exclusive=False
    )
    for number_id in number_ids:
        if number_id not in found:
            raise NotFound(f"number {number_id} not found")
    agent = models.Agent(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        user_id=str(principal.key_id),
        type=body.type,
        voicemail_action=body.voicemail_action,
        primary_number_id=body.primary_number_id or (number_ids[0] if number_ids else None),
        returns=body.returns,
        tools=_stored(body, "tools"),
        **{field: getattr(body, field) for field in _SCALAR_FIELDS},
    )
    agent = await repository.insert_agent(session, agent)
    for number_id in number_ids:
        attached = await repository.attach(session, agent, number_id)
        if attached.inbound_holder is not None:
            raise _in_use(number_id, attached.inbound_holder)
    return await _render_one(session, agent)


def _in_use(number_id: uuid.UUID, holder: uuid.UUID) -> NumberInUse:
    return NumberInUse(f"number {number_id} already answers for inbound agent {holder}")


async def update_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    body: schemas.AgentUpdate,
    *,
    if_match: IfMatch | None = None,
) -> schemas.Agent:
    agent = await _get_mutable(session, principal, agent_id, if_match)
    values = {field: _stored(body, field) for field in body.model_fields_set}
    primary = values.get("primary_number_id")
    if primary is not None:
        await _require_attached(session, agent, primary)
    if values:
        agent = await repository.update_agent(session, principal.org_id, agent_id, values)
    return await _render_one(session, agent)


async def _require_attached(
    session: AsyncSession, agent: models.Agent, number_id: uuid.UUID
) -> None:
    if number_id not in await repository.attached_number_ids(session, agent.id):
        raise InvalidRequest(f"number {number_id} is not attached to agent {agent.id}")


async def archive_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    *,
    if_match: IfMatch | None = None,
) -> schemas.Agent:
    found = await repository.get(session, principal.org_id, agent_id, for_update=True)
    agent = await _require(session, found, agent_id, if_match, mutable=False)
    if agent.archived_at is None:
        await repository.detach_all(session, agent_id)
        agent = await repository.archive(session, principal.org_id, agent_id)
    return await _render_one(session, agent)


async def attach_number(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    body: schemas.AttachNumber,
    *,
    if_match: IfMatch | None = None,
) -> schemas.Agent:
    # Checked in the same order as every other change: agent, If-Match, archived, then the
    # number; the agent is checked again once it is locked.
    found = await repository.get(session, principal.org_id, agent_id)
    await _require(session, found, agent_id, if_match)
    # Numbers are locked before agents, everywhere (see numbers.repository.lock_active).
    if not await numbers_repository.lock_active(
        session, principal.org_id, [body.number_id], exclusive=False
    ):
        raise NotFound(f"number {body.number_id} not found")
    agent = await _get_mutable(session, principal, agent_id, if_match)
    attached = await repository.attach(session, agent, body.number_id)
    if attached.inbound_holder is not None:
        raise _in_use(body.number_id, attached.inbound_holder)
    values: dict[str, Any] = {}
    wants_primary = body.set_as_primary or agent.primary_number_id is None
    if wants_primary and agent.primary_number_id != body.number_id:
        values["primary_number_id"] = body.number_id
    if attached.inserted or values:
        agent = await repository.update_agent(session, principal.org_id, agent_id, values)
    return await _render_one(session, agent)


async def detach_number(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    number_id: uuid.UUID,
    *,
    if_match: IfMatch | None = None,
) -> schemas.Agent:
    agent = await _get_mutable(session, principal, agent_id, if_match)
    if not await repository.detach(session, agent_id, number_id):
        raise NotFound(f"number {number_id} is not attached to agent {agent_id}")
    agent = await after_numbers_detached(session, agent, number_id)
    return await _render_one(session, agent)


async def after_numbers_detached(
    session: AsyncSession, agent: models.Agent, number_id: uuid.UUID
) -> models.Agent:
    """Advance ``updated_at`` and, when the primary went, promote the earliest-attached rest."""
    values: dict[str, Any] = {}
    if agent.primary_number_id == number_id:
        remaining = await repository.attached_number_ids(session, agent.id)
        values["primary_number_id"] = remaining[0] if remaining else None
    return await repository.update_agent(session, agent.org_id, agent.id, values)


async def set_primary_number(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    body: schemas.SetPrimaryNumber,
    *,
    if_match: IfMatch | None = None,
) -> schemas.Agent:
    agent = await _get_mutable(session, principal, agent_id, if_match)
    await _require_attached(session, agent, body.number_id)
    if agent.primary_number_id != body.number_id:
        agent = await repository.update_agent(
            session, principal.org_id, agent_id, {"primary_number_id": body.number_id}
        )
    return await _render_one(session, agent)
