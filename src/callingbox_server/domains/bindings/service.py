"""The binding rules: attach, detach, the primary number, and the cascades of archive and release.

A number answers for at most one inbound agent and is caller ID for any number of outbound ones;
an agent's primary number is always one of its attached numbers (a deferred constraint checks
it at commit). Lock order everywhere: numbers first, then agents by id.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.errors import InvalidRequest, NotFound, NumberInUse
from callingbox_server.domains.bindings import repository


async def attach(session: AsyncSession, agent: models.Agent, number_id: uuid.UUID) -> bool:
    """Attach a number to a locked agent; False when it was attached already.

    ``409 number_in_use`` when another inbound agent answers it.
    """
    while True:
        if await repository.insert_link(session, agent.org_id, agent.id, agent.type, number_id):
            return True
        if agent.type == "outbound":
            return False
        holder = await repository.inbound_holder(session, agent.org_id, number_id)
        if holder == agent.id:
            return False
        if holder is not None:
            raise NumberInUse(f"number {number_id} already answers for inbound agent {holder}")
        # The holder let go between our insert and our read: try the insert again.


async def require_attached(
    session: AsyncSession, agent: models.Agent, number_id: uuid.UUID
) -> None:
    if number_id not in await repository.attached_number_ids(session, agent.org_id, agent.id):
        raise InvalidRequest(f"number {number_id} is not attached to agent {agent.id}")


async def detach(session: AsyncSession, agent: models.Agent, number_id: uuid.UUID) -> None:
    """Detach a number from a locked agent; a detached primary passes to the earliest-attached
    of the rest."""
    if not await repository.delete_link(session, agent.org_id, agent.id, number_id):
        raise NotFound(f"number {number_id} is not attached to agent {agent.id}")
    await repository.after_detach(session, agent.org_id, [agent.id], number_id)


async def detach_all(session: AsyncSession, agent: models.Agent) -> None:
    """Archiving: the agent lets go of every number (its primary is cleared with the archive)."""
    await repository.delete_links_of_agent(session, agent.org_id, agent.id)


async def detach_everywhere(session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID) -> None:
    """Releasing: the number, locked exclusively, leaves every agent, promoting primaries.

    No attachment can be added while the number is held (attach takes a shared lock on it), but
    one can go: only agents that still had the number when it was detached are touched.
    """
    await repository.lock_agents(
        session, org_id, await repository.attached_agent_ids(session, org_id, number_id)
    )
    detached_from = await repository.delete_links_of_number(session, org_id, number_id)
    await repository.after_detach(session, org_id, detached_from, number_id)
