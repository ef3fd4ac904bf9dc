"""The agent rules: create (with numbers), update, archive, and the binding changes on an agent.

Every change checks in the same order (404, then 412, then 409 archived) and answers with the
agent re-read through its one representation (``views.read``) in the same transaction.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import Reads
from callingbox_server.core.errors import AgentArchived, NotFound, Unauthorized
from callingbox_server.core.pagination import resolve_cursor
from callingbox_server.core.preconditions import IfMatch, require_match
from callingbox_server.core.principal import Caller, Principal
from callingbox_server.domains.agents import repository, schemas, views
from callingbox_server.domains.bindings import service as bindings
from callingbox_server.domains.events import repository as events
from callingbox_server.domains.events.types import ConfigurationEventType
from callingbox_server.domains.numbers import repository as numbers_repository
from callingbox_server.domains.numbers import views as numbers_views

_SCALAR_FIELDS = ("name", "persona", "instructions", "voice", "language", "webhook_url")


def _not_found(agent_id: uuid.UUID) -> NotFound:
    return NotFound(f"agent {agent_id} not found")


async def _view(reads: Reads, org_id: uuid.UUID, agent_id: uuid.UUID) -> bytes:
    agent = await views.read(reads, org_id, agent_id)
    if agent is None:
        raise _not_found(agent_id)
    return agent


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
        current = await _view(session, agent.org_id, agent_id)
        require_match(if_match, current, f"agent {agent_id}")
    if mutable and agent.archived_at is not None:
        raise AgentArchived(f"agent {agent_id} is archived")
    return agent


async def _get_mutable(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    if_match: IfMatch | None = None,
) -> models.Agent:
    agent = await repository.get(session, principal.org_id, agent_id, for_update=True)
    return await _require(session, agent, agent_id, if_match)


async def _announce(
    session: AsyncSession,
    org_id: uuid.UUID,
    type: ConfigurationEventType,
    agent: bytes,
    number_id: uuid.UUID | None = None,
) -> bytes:
    """Write the change's configuration event (in its transaction); returns the agent."""
    data: dict[str, Any] = {"agent": json.loads(agent)}
    if number_id is not None:
        number = await numbers_views.read(session, org_id, number_id)
        data["number"] = None if number is None else json.loads(number)
    await events.record(session, org_id=org_id, type=type, data=data)
    return agent


def _stored(body: schemas.AgentFields, field: str) -> Any:
    """The column value for a request field (tools and returns are stored as sent, as JSON)."""
    if field == "tools":
        tools = body.tools
        return (
            None if tools is None else [t.model_dump(mode="json", exclude_none=True) for t in tools]
        )
    return getattr(body, field)


async def get_agent(reads: Reads, caller: Caller, agent_id: uuid.UUID) -> bytes:
    if caller.principal is not None:
        return await _view(reads, caller.principal.org_id, agent_id)
    found = await views.read_with_key(reads, caller.key_hash, agent_id)
    if found is None:
        raise Unauthorized()
    _, agent = found
    if agent is None:
        raise _not_found(agent_id)
    return agent


async def list_agents(
    session: AsyncSession, principal: Principal, query: schemas.AgentListQuery
) -> bytes:
    cursor = await resolve_cursor(
        query,
        "agent",
        lambda agent_id, newer: repository.get_cursor(session, principal.org_id, agent_id, newer),
    )
    return await views.page(
        session,
        principal.org_id,
        agent_type=query.type,
        include_archived=query.include_archived,
        cursor=cursor,
        limit=query.limit,
    )


async def create_agent(
    session: AsyncSession, principal: Principal, body: schemas.AgentCreate
) -> bytes:
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
    await repository.insert_agent(session, agent)
    for number_id in number_ids:
        await bindings.attach(session, agent, number_id)
    created = await _view(session, principal.org_id, agent.id)
    return await _announce(session, principal.org_id, "agent.created", created)


async def update_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    body: schemas.AgentUpdate,
    *,
    if_match: IfMatch | None = None,
) -> bytes:
    agent = await _get_mutable(session, principal, agent_id, if_match)
    values = {field: _stored(body, field) for field in body.model_fields_set}
    primary = values.get("primary_number_id")
    if primary is not None:
        await bindings.require_attached(session, agent, primary)
    if not values:
        return await _view(session, principal.org_id, agent_id)
    await repository.update_agent(session, principal.org_id, agent_id, values)
    updated = await _view(session, principal.org_id, agent_id)
    return await _announce(session, principal.org_id, "agent.updated", updated)


async def archive_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    *,
    if_match: IfMatch | None = None,
) -> bytes:
    found = await repository.get(session, principal.org_id, agent_id, for_update=True)
    agent = await _require(session, found, agent_id, if_match, mutable=False)
    if agent.archived_at is not None:
        return await _view(session, principal.org_id, agent_id)
    await bindings.detach_all(session, agent)
    await repository.archive(session, principal.org_id, agent_id)
    archived = await _view(session, principal.org_id, agent_id)
    return await _announce(session, principal.org_id, "agent.archived", archived)


async def attach_number(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    body: schemas.AttachNumber,
    *,
    if_match: IfMatch | None = None,
) -> bytes:
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
    inserted = await bindings.attach(session, agent, body.number_id)
    values: dict[str, Any] = {}
    wants_primary = body.set_as_primary or agent.primary_number_id is None
    if wants_primary and agent.primary_number_id != body.number_id:
        values["primary_number_id"] = body.number_id
    if not (inserted or values):
        return await _view(session, principal.org_id, agent_id)
    await repository.update_agent(session, principal.org_id, agent_id, values)
    attached = await _view(session, principal.org_id, agent_id)
    if not inserted:  # attached already: only the primary number changed
        return await _announce(session, principal.org_id, "agent.updated", attached)
    return await _announce(
        session, principal.org_id, "agent.number_attached", attached, body.number_id
    )


async def detach_number(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    number_id: uuid.UUID,
    *,
    if_match: IfMatch | None = None,
) -> bytes:
    agent = await _get_mutable(session, principal, agent_id, if_match)
    await bindings.detach(session, agent, number_id)
    detached = await _view(session, principal.org_id, agent_id)
    return await _announce(session, principal.org_id, "agent.number_detached", detached, number_id)


async def set_primary_number(
    session: AsyncSession,
    principal: Principal,
    agent_id: uuid.UUID,
    body: schemas.SetPrimaryNumber,
    *,
    if_match: IfMatch | None = None,
) -> bytes:
    agent = await _get_mutable(session, principal, agent_id, if_match)
    await bindings.require_attached(session, agent, body.number_id)
    if agent.primary_number_id == body.number_id:
        return await _view(session, principal.org_id, agent_id)
    await repository.update_agent(
        session, principal.org_id, agent_id, {"primary_number_id": body.number_id}
    )
    updated = await _view(session, principal.org_id, agent_id)
    return await _announce(session, principal.org_id, "agent.updated", updated)
