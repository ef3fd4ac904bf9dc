"""HTTP for /v1/agents: translate requests into service calls and results into responses."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from callingbox_server.api.dependencies import (
    CallerDep,
    IfMatchDep,
    PrincipalDep,
    SessionDep,
    check_query_parameters,
    identify,
    parse_id,
    require_json,
)
from callingbox_server.api.direct import Answer
from callingbox_server.api.idempotency import IdempotencyDep
from callingbox_server.api.openapi import (
    BODY_ERRORS,
    IDEMPOTENT_ERRORS,
    error_responses,
    object_responses,
)
from callingbox_server.api.responses import json_bytes, representation
from callingbox_server.core.db.driver import Reads
from callingbox_server.core.pagination import Page
from callingbox_server.core.principal import Caller
from callingbox_server.domains.agents import schemas, service


async def _agent_id(
    id: Annotated[str, Path(description="The agent's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(id, "agent")


async def _number_id(
    number_id: Annotated[str, Path(description="The number's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(number_id, "number")


AgentId = Annotated[uuid.UUID, Depends(_agent_id)]
NumberId = Annotated[uuid.UUID, Depends(_number_id)]

router = APIRouter(
    prefix="/v1/agents",
    tags=["agents"],
    dependencies=[
        Depends(identify),
        Depends(check_query_parameters),
    ],
)
_json = [Depends(require_json)]


@router.get(
    "", summary="List agents", response_model=Page[schemas.Agent], responses=error_responses(400)
)
async def list_agents(
    session: SessionDep, principal: PrincipalDep, query: Annotated[schemas.AgentListQuery, Query()]
) -> Response:
    """List the organization's agents, newest first."""
    return json_bytes(await service.list_agents(session, principal, query))


@router.post(
    "",
    status_code=201,
    summary="Create an agent",
    response_model=schemas.Agent,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, 404, status_code=201),
)
async def create_agent(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
    body: schemas.AgentCreate,
) -> Response:
    """Create an inbound or outbound agent, optionally attaching numbers."""

    async def create() -> Response:
        return representation(await service.create_agent(session, principal, body), 201)

    return await idempotency.run(create)


@router.get(
    "/{id}", summary="Get an agent", response_model=schemas.Agent, responses=object_responses(404)
)
async def get_agent(session: SessionDep, caller: CallerDep, agent_id: AgentId) -> Response:
    """Retrieve an agent, archived or not."""
    return representation(await service.get_agent(session, caller, agent_id))


async def get_agent_directly(reads: Reads, caller: Caller, path: dict[str, Any]) -> Response:
    # get_agent as api.direct serves it: the same read and response, on a pooled connection.
    agent_id = parse_id(path["id"], "agent")
    return representation(await service.get_agent(reads, caller, agent_id))


DIRECT: dict[str, Answer] = {"get_agent": get_agent_directly}


@router.patch(
    "/{id}",
    summary="Update an agent",
    response_model=schemas.Agent,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, 404, 409, 412),
)
async def update_agent(
    session: SessionDep,
    principal: PrincipalDep,
    agent_id: AgentId,
    if_match: IfMatchDep,
    body: schemas.AgentUpdate,
) -> Response:
    """Change the fields present in the body; an explicit null clears a nullable field."""
    return representation(
        await service.update_agent(session, principal, agent_id, body, if_match=if_match)
    )


@router.delete(
    "/{id}",
    summary="Archive an agent",
    response_model=schemas.Agent,
    responses=object_responses(400, 404, 412),
)
async def archive_agent(
    session: SessionDep, principal: PrincipalDep, agent_id: AgentId, if_match: IfMatchDep
) -> Response:
    """Archive an agent: it detaches every number and can no longer be changed."""
    return representation(
        await service.archive_agent(session, principal, agent_id, if_match=if_match)
    )


@router.post(
    "/{id}/numbers",
    summary="Attach a number to an agent",
    response_model=schemas.Agent,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, 404, 412),
)
async def attach_number(
    session: SessionDep,
    principal: PrincipalDep,
    agent_id: AgentId,
    if_match: IfMatchDep,
    idempotency: IdempotencyDep,
    body: schemas.AttachNumber,
) -> Response:
    """Attach one of the organization's numbers to an agent."""

    async def attach() -> Response:
        agent = await service.attach_number(session, principal, agent_id, body, if_match=if_match)
        return representation(agent)

    return await idempotency.run(attach)


@router.delete(
    "/{id}/numbers/{number_id}",
    summary="Detach a number from an agent",
    response_model=schemas.Agent,
    responses=object_responses(400, 404, 409, 412),
)
async def detach_number(
    session: SessionDep,
    principal: PrincipalDep,
    agent_id: AgentId,
    number_id: NumberId,
    if_match: IfMatchDep,
) -> Response:
    """Detach a number from an agent; a detached primary passes to the earliest-attached rest."""
    return representation(
        await service.detach_number(session, principal, agent_id, number_id, if_match=if_match)
    )


@router.put(
    "/{id}/primary-number",
    summary="Set an agent's primary number",
    response_model=schemas.Agent,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, 404, 409, 412),
)
async def set_primary_number(
    session: SessionDep,
    principal: PrincipalDep,
    agent_id: AgentId,
    if_match: IfMatchDep,
    body: schemas.SetPrimaryNumber,
) -> Response:
    """Make an attached number the agent's primary (its default caller ID)."""
    return representation(
        await service.set_primary_number(session, principal, agent_id, body, if_match=if_match)
    )
