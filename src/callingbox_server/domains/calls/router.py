"""HTTP for /v1/calls, and the sandbox's test helpers under /v1/test_helpers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from callingbox_server.api.dependencies import (
    PrincipalDep,
    SessionDep,
    authenticate,
    check_query_parameters,
    parse_id,
    require_json,
)
from callingbox_server.api.idempotency import IdempotencyDep
from callingbox_server.api.openapi import (
    BODY_ERRORS,
    IDEMPOTENT_ERRORS,
    error_responses,
    object_responses,
)
from callingbox_server.api.responses import json_bytes, representation
from callingbox_server.core.pagination import Page
from callingbox_server.domains.calls import schemas, service, test_helpers
from callingbox_server.domains.calls.carriers.interface import Carrier


async def _call_id(id: Annotated[str, Path(description="The call's id (a UUID).")]) -> uuid.UUID:
    return parse_id(id, "call")


async def _carrier(request: Request) -> Carrier:
    carrier: Carrier = request.app.state.carrier
    return carrier


CallId = Annotated[uuid.UUID, Depends(_call_id)]
CarrierDep = Annotated[Carrier, Depends(_carrier)]
_dependencies = [Depends(authenticate), Depends(check_query_parameters)]
_json = [Depends(require_json)]

router = APIRouter(prefix="/v1/calls", tags=["calls"], dependencies=_dependencies)


@router.get(
    "", summary="List calls", response_model=Page[schemas.Call], responses=error_responses(400)
)
async def list_calls(
    session: SessionDep, principal: PrincipalDep, query: Annotated[schemas.CallListQuery, Query()]
) -> Response:
    """List the organization's calls, newest first; filter by agent, direction or status."""
    return json_bytes(await service.list_calls(session, principal, query))


@router.post(
    "",
    status_code=201,
    summary="Dispatch a call",
    response_model=schemas.Call,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, 404, 502, status_code=201),
)
async def create_call(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
    carrier: CarrierDep,
    body: schemas.CallCreate,
) -> Response:
    """Dispatch an outbound call from an agent (or, without agent_id, a legacy call)."""

    async def create() -> Response:
        return representation(await service.create_call(session, principal, body, carrier), 201)

    return await idempotency.run(create)


@router.get(
    "/{id}", summary="Get a call", response_model=schemas.Call, responses=object_responses(404)
)
async def get_call(session: SessionDep, principal: PrincipalDep, call_id: CallId) -> Response:
    """Retrieve a call."""
    return representation(await service.get_call(session, principal, call_id))


@router.get(
    "/{id}/transcript",
    summary="Get a call's transcript",
    response_model=schemas.Transcript,
    responses=error_responses(404),
)
async def get_transcript(session: SessionDep, principal: PrincipalDep, call_id: CallId) -> Response:
    """The call's transcript segments, in order (none until the call has spoken)."""
    return json_bytes(await service.get_transcript(session, principal, call_id))


@router.post(
    "/{id}/cancel",
    summary="Cancel a call",
    response_model=schemas.Call,
    responses=object_responses(400, *IDEMPOTENT_ERRORS, 404),
)
async def cancel_call(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
    carrier: CarrierDep,
    call_id: CallId,
) -> Response:
    """Cancel a call that has not been answered yet (else 409 call_not_cancelable)."""

    async def cancel() -> Response:
        return representation(await service.cancel_call(session, principal, call_id, carrier))

    return await idempotency.run(cancel)


test_helpers_router = APIRouter(
    prefix="/v1/test_helpers", tags=["test helpers"], dependencies=_dependencies
)


@test_helpers_router.post(
    "/calls/{id}/advance",
    summary="Move a sandbox call one step",
    response_model=schemas.Call,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, 404),
)
async def advance_call(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
    carrier: CarrierDep,
    call_id: CallId,
    body: schemas.Advance,
) -> Response:
    """Move a call to its next status by hand (409 invalid_transition if that is no legal step)."""

    async def advance() -> Response:
        moved = await test_helpers.advance(session, principal, call_id, body, carrier)
        return representation(moved)

    return await idempotency.run(advance)


@test_helpers_router.post(
    "/inbound_calls",
    status_code=201,
    summary="Place a sandbox inbound call",
    response_model=schemas.Call,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, 404, status_code=201),
)
async def create_inbound_call(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
    carrier: CarrierDep,
    body: schemas.InboundCall,
) -> Response:
    """A caller dials one of your numbers; its inbound agent answers."""

    async def create() -> Response:
        placed = await test_helpers.place_inbound(session, principal, body, carrier)
        return representation(placed, 201)

    return await idempotency.run(create)
