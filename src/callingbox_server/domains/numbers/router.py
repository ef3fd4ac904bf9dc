"""HTTP for /v1/numbers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import Response

from callingbox_server.api.dependencies import (
    IfMatchDep,
    PrincipalDep,
    SessionDep,
    check_query_parameters,
    identify,
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
from callingbox_server.domains.numbers import schemas, service
from callingbox_server.domains.numbers.providers import NumbersProvider


async def _number_id(
    id: Annotated[str, Path(description="The number's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(id, "number")


async def _provider(request: Request) -> NumbersProvider:
    provider: NumbersProvider = request.app.state.numbers_provider
    return provider


class NumberIdConvertor(StringConvertor):
    """A path segment that can be a number's id: anything but the literal sub-paths beside it,
    so that GET /v1/numbers/purchase is a 405 (it is POST only), not "number purchase not found"."""

    regex = r"(?!(?:available|purchase)$)[^/]+"


register_url_convertor("number_id", NumberIdConvertor())

NumberId = Annotated[uuid.UUID, Depends(_number_id)]
ProviderDep = Annotated[NumbersProvider, Depends(_provider)]

router = APIRouter(
    prefix="/v1/numbers",
    tags=["numbers"],
    dependencies=[
        Depends(identify),
        Depends(check_query_parameters),
    ],
)


@router.get(
    "",
    summary="List your phone numbers",
    response_model=Page[schemas.Number],
    responses=error_responses(400),
)
async def list_numbers(
    session: SessionDep,
    principal: PrincipalDep,
    query: Annotated[schemas.NumberListQuery, Query()],
) -> Response:
    """List the organization's numbers, newest first (active ones unless asked otherwise)."""
    return json_bytes(await service.list_numbers(session, principal, query))


@router.get("/available", summary="Search available numbers", responses=error_responses(400))
async def search_available_numbers(
    session: SessionDep,
    provider: ProviderDep,
    query: Annotated[schemas.AvailableQuery, Query()],
) -> schemas.AvailableNumbers:
    """Search the numbers on offer that no organization owns."""
    return await service.search_available(session, provider, query)


@router.post(
    "/purchase",
    status_code=201,
    summary="Purchase a phone number",
    response_model=schemas.Number,
    dependencies=[Depends(require_json)],
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, status_code=201),
)
async def purchase_number(
    session: SessionDep,
    principal: PrincipalDep,
    provider: ProviderDep,
    idempotency: IdempotencyDep,
    body: schemas.PurchaseRequest,
) -> Response:
    """Buy a number on offer; it becomes an active number of the organization."""

    async def purchase() -> Response:
        number = await service.purchase_number(session, principal, provider, body)
        return representation(number, 201)

    return await idempotency.run(purchase)


@router.get(
    "/{id:number_id}",
    summary="Get a phone number",
    response_model=schemas.Number,
    responses=object_responses(404),
)
async def get_number(session: SessionDep, principal: PrincipalDep, number_id: NumberId) -> Response:
    """Retrieve a number, active or released."""
    return representation(await service.get_number(session, principal, number_id))


@router.delete(
    "/{id:number_id}",
    summary="Release a phone number",
    response_model=schemas.Number,
    responses=object_responses(400, 404, 412),
)
async def release_number(
    session: SessionDep,
    principal: PrincipalDep,
    provider: ProviderDep,
    number_id: NumberId,
    if_match: IfMatchDep,
) -> Response:
    """Release a number: it leaves every agent and may be bought again."""
    number = await service.release_number(
        session, principal, provider, number_id, if_match=if_match
    )
    return representation(number)
