"""HTTP for /v1/agents: translate requests into service calls and results into responses."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from callingbox_server.agents import schemas, service
from callingbox_server.auth import PrincipalDep, authenticate
from callingbox_server.common import Page, parse_id
from callingbox_server.db import SessionDep
from callingbox_server.routing import (
    BODY_ERRORS,
    error_responses,
    reject_repeated_query_parameters,
    require_json,
)


def _agent_id(
    id: Annotated[str, Path(description="The agent's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(id, "agent")


def _number_id(
    number_id: Annotated[str, Path(description="The number's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(number_id, "number")


AgentId = Annotated[uuid.UUID, Depends(_agent_id)]
NumberId = Annotated[uuid.UUID, Depends(_number_id)]

router = APIRouter(
    prefix="/v1/agents",
    tags=["agents"],
    dependencies=[Depends(authenticate), Depends(reject_repeated_query_parameters)],
)
_json = [Depends(require_json)]


@router.get("", summary="List agents", responses=error_responses(400))
async def list_agents(
    session: SessionDep, principal: PrincipalDep, query: Annotated[schemas.AgentListQuery, Query()]
) -> Page[schemas.Agent]:
    """List the organization's agents, newest first."""
    return await service.list_agents(session, principal, query)


@router.post(
    "",
    status_code=201,
    summary="Create an agent",
    dependencies=_json,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def create_agent(
    session: SessionDep, principal: PrincipalDep, body: schemas.AgentCreate
) -> schemas.Agent:
    """Create an inbound or outbound agent, optionally attaching numbers."""
    return await service.create_agent(session, principal, body)


@router.get("/{id}", summary="Get an agent", responses=error_responses(404))
async def get_agent(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId
) -> schemas.Agent:
    """Retrieve an agent, archived or not."""
    return await service.get_agent(session, principal, agent_id)


@router.patch(
    "/{id}",
    summary="Update an agent",
    dependencies=_json,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def update_agent(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId, body: schemas.AgentUpdate
) -> schemas.Agent:
    """Change the fields present in the body; an explicit null clears a nullable field."""
    return await service.update_agent(session, principal, agent_id, body)


@router.delete("/{id}", summary="Archive an agent", responses=error_responses(404))
async def archive_agent(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId
) -> schemas.Agent:
    """Archive an agent: it detaches every number and can no longer be changed."""
    return await service.archive_agent(session, principal, agent_id)


@router.post(
    "/{id}/numbers",
    summary="Attach a number to an agent",
    dependencies=_json,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def attach_number(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId, body: schemas.AttachNumber
) -> schemas.Agent:
    """Attach one of the organization's numbers to an agent."""
    return await service.attach_number(session, principal, agent_id, body)


@router.delete(
    "/{id}/numbers/{number_id}",
    summary="Detach a number from an agent",
    responses=error_responses(404, 409),
)
async def detach_number(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId, number_id: NumberId
) -> schemas.Agent:
    """Detach a number from an agent; a detached primary passes to the earliest-attached rest."""
    return await service.detach_number(session, principal, agent_id, number_id)


@router.put(
    "/{id}/primary-number",
    summary="Set an agent's primary number",
    dependencies=_json,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def set_primary_number(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId, body: schemas.SetPrimaryNumber
) -> schemas.Agent:
    """Make an attached number the agent's primary (its default caller ID)."""
    return await service.set_primary_number(session, principal, agent_id, body)
