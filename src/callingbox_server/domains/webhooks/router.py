"""HTTP for /v1/webhook_endpoints and /v1/webhook_deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from callingbox_server.api.dependencies import (
    IfMatchDep,
    PrincipalDep,
    SessionDep,
    authenticate,
    check_query_parameters,
    parse_id,
    require_json,
)
from callingbox_server.api.idempotency import IdempotencyDep
from callingbox_server.api.middleware import JSON_CONTENT_TYPE
from callingbox_server.api.openapi import (
    BODY_ERRORS,
    IDEMPOTENT_ERRORS,
    error_responses,
    object_responses,
)
from callingbox_server.api.responses import json_bytes, representation
from callingbox_server.core.pagination import Page, PageQuery
from callingbox_server.core.preconditions import etag_of
from callingbox_server.domains.webhooks import schemas, service


async def _endpoint_id(
    id: Annotated[str, Path(description="The webhook endpoint's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(id, "webhook endpoint")


async def _delivery_id(
    id: Annotated[str, Path(description="The webhook delivery's id (a UUID).")],
) -> uuid.UUID:
    return parse_id(id, "webhook delivery")


async def _allow_private(request: Request) -> bool:
    allowed: bool = request.app.state.webhook_allow_private
    return allowed


EndpointId = Annotated[uuid.UUID, Depends(_endpoint_id)]
DeliveryId = Annotated[uuid.UUID, Depends(_delivery_id)]
AllowPrivate = Annotated[bool, Depends(_allow_private)]
_dependencies = [Depends(authenticate), Depends(check_query_parameters)]
endpoints = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"], dependencies=_dependencies)
deliveries = APIRouter(
    prefix="/v1/webhook_deliveries", tags=["webhooks"], dependencies=_dependencies
)
_json = [Depends(require_json)]


def _with_secret(views: tuple[bytes, bytes], status_code: int = 200) -> Response:
    """The endpoint with its secret; the ETag is that of the endpoint as GET shows it."""
    view, shown = views
    headers = {"ETag": etag_of(view)}
    return Response(shown, status_code, headers=headers, media_type=JSON_CONTENT_TYPE)


@endpoints.get(
    "",
    summary="List webhook endpoints",
    response_model=Page[schemas.WebhookEndpoint],
    responses=error_responses(400),
)
async def list_webhook_endpoints(
    session: SessionDep, principal: PrincipalDep, query: Annotated[PageQuery, Query()]
) -> Response:
    """List the organization's webhook endpoints, newest first."""
    return json_bytes(await service.list_endpoints(session, principal, query))


@endpoints.post(
    "",
    status_code=201,
    summary="Create a webhook endpoint",
    response_model=schemas.WebhookEndpointWithSecret,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, *IDEMPOTENT_ERRORS, status_code=201),
)
async def create_webhook_endpoint(
    session: SessionDep,
    principal: PrincipalDep,
    idempotency: IdempotencyDep,
    allow_private: AllowPrivate,
    body: schemas.WebhookEndpointCreate,
) -> Response:
    """Create an endpoint; the response is the one place its signing secret is shown."""

    async def create() -> Response:
        views = await service.create_endpoint(session, principal, body, allow_private=allow_private)
        return _with_secret(views, 201)

    return await idempotency.run(create)


@endpoints.get(
    "/{id}",
    summary="Get a webhook endpoint",
    response_model=schemas.WebhookEndpoint,
    responses=object_responses(404),
)
async def get_webhook_endpoint(
    session: SessionDep, principal: PrincipalDep, endpoint_id: EndpointId
) -> Response:
    """Retrieve a webhook endpoint."""
    return representation(await service.get_endpoint(session, principal, endpoint_id))


@endpoints.patch(
    "/{id}",
    summary="Update a webhook endpoint",
    response_model=schemas.WebhookEndpoint,
    dependencies=_json,
    responses=object_responses(*BODY_ERRORS, 404, 412),
)
async def update_webhook_endpoint(
    session: SessionDep,
    principal: PrincipalDep,
    endpoint_id: EndpointId,
    if_match: IfMatchDep,
    allow_private: AllowPrivate,
    body: schemas.WebhookEndpointUpdate,
) -> Response:
    """Change the fields present; status "enabled" also zeroes consecutive_failures."""
    return representation(
        await service.update_endpoint(
            session, principal, endpoint_id, body, if_match=if_match, allow_private=allow_private
        )
    )


@endpoints.delete(
    "/{id}",
    summary="Delete a webhook endpoint",
    response_model=schemas.WebhookEndpoint,
    responses=object_responses(400, 404, 412),
)
async def delete_webhook_endpoint(
    session: SessionDep, principal: PrincipalDep, endpoint_id: EndpointId, if_match: IfMatchDep
) -> Response:
    """Delete an endpoint; its pending deliveries stop. Answers with the endpoint as it was."""
    return representation(
        await service.delete_endpoint(session, principal, endpoint_id, if_match=if_match)
    )


@endpoints.post(
    "/{id}/rotate_secret",
    summary="Rotate a webhook endpoint's signing secret",
    response_model=schemas.WebhookEndpointWithSecret,
    responses=object_responses(*IDEMPOTENT_ERRORS, 400, 404),
)
async def rotate_webhook_secret(
    session: SessionDep,
    principal: PrincipalDep,
    endpoint_id: EndpointId,
    idempotency: IdempotencyDep,
) -> Response:
    """Replace the signing secret; the old one stops verifying at once."""

    async def rotate() -> Response:
        return _with_secret(await service.rotate_secret(session, principal, endpoint_id))

    return await idempotency.run(rotate)


@deliveries.get(
    "",
    summary="List webhook deliveries",
    response_model=Page[schemas.WebhookDelivery],
    responses=error_responses(400),
)
async def list_webhook_deliveries(
    session: SessionDep,
    principal: PrincipalDep,
    query: Annotated[schemas.DeliveryListQuery, Query()],
) -> Response:
    """List deliveries, newest first; filter by endpoint, call or status."""
    return json_bytes(await service.list_deliveries(session, principal, query))


@deliveries.get(
    "/{id}",
    summary="Get a webhook delivery",
    response_model=schemas.WebhookDelivery,
    responses=object_responses(404),
)
async def get_webhook_delivery(
    session: SessionDep, principal: PrincipalDep, delivery_id: DeliveryId
) -> Response:
    """Retrieve a delivery."""
    return representation(await service.get_delivery(session, principal, delivery_id))


@deliveries.post(
    "/{id}/redeliver",
    summary="Send a webhook delivery again",
    response_model=schemas.WebhookDelivery,
    responses=object_responses(*IDEMPOTENT_ERRORS, 400, 404),
)
async def redeliver_webhook(
    session: SessionDep,
    principal: PrincipalDep,
    delivery_id: DeliveryId,
    idempotency: IdempotencyDep,
) -> Response:
    """Make a delivery pending and due now (same id); its next attempt is a manual one."""

    async def redeliver() -> Response:
        return representation(await service.redeliver(session, principal, delivery_id))

    return await idempotency.run(redeliver)


@deliveries.get(
    "/{id}/attempts",
    summary="List a webhook delivery's attempts",
    response_model=Page[schemas.WebhookAttempt],
    responses=error_responses(400, 404),
)
async def list_webhook_attempts(
    session: SessionDep,
    principal: PrincipalDep,
    delivery_id: DeliveryId,
    query: Annotated[PageQuery, Query()],
) -> Response:
    """Every attempt of a delivery, newest first, with the first 1,024 bytes of each response."""
    return json_bytes(await service.list_attempts(session, principal, delivery_id, query))
