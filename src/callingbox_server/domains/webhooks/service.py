"""The webhook endpoint and delivery rules: what may change, and what a change does to the
deliveries in flight (pause, resume, stop) in the same transaction."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.errors import InvalidRequest, NotFound
from callingbox_server.core.pagination import PageQuery, page_body, resolve_cursor
from callingbox_server.core.preconditions import IfMatch, require_match
from callingbox_server.core.principal import Principal
from callingbox_server.domains.webhooks import repository, schemas, views
from callingbox_server.domains.webhooks.sender import PRIVATE_HINT, is_public

RESOLVE_TIMEOUT_SECONDS = 2.0


async def _private_host(host: str) -> bool:
    """Whether every address ``host`` resolves to is private (the rule for http URLs)."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError):
        raise InvalidRequest(f"invalid field url: could not resolve {host}") from None
    return not any(is_public(ipaddress.ip_address(info[4][0])) for info in infos)


async def check_url(url: str, allow_private: bool) -> None:
    """https anywhere; http only to a private address, where private addresses are allowed."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return
    if not allow_private:
        raise InvalidRequest(
            "invalid field url: must be an https URL (http is accepted only for private "
            f"addresses, and those only when allowed: {PRIVATE_HINT})"
        )
    if not await _private_host(parts.hostname or ""):
        raise InvalidRequest(
            f"invalid field url: must be an https URL ({parts.hostname} is a public address)"
        )


def _not_found(endpoint_id: uuid.UUID) -> NotFound:
    return NotFound(f"webhook endpoint {endpoint_id} not found")


async def _view(session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> bytes:
    body = await views.endpoint(session, org_id, endpoint_id)
    if body is None:
        raise _not_found(endpoint_id)
    return body


async def _locked(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, if_match: IfMatch | None
) -> models.WebhookEndpoint:
    endpoint = await repository.get_endpoint(
        session, principal.org_id, endpoint_id, for_update=True
    )
    if endpoint is None:
        raise _not_found(endpoint_id)
    if if_match is not None:
        current = await _view(session, principal.org_id, endpoint_id)
        require_match(if_match, current, f"webhook endpoint {endpoint_id}")
    return endpoint


async def create_endpoint(
    session: AsyncSession,
    principal: Principal,
    body: schemas.WebhookEndpointCreate,
    *,
    allow_private: bool,
) -> tuple[bytes, bytes]:
    """The new endpoint's representation, and the same with its signing secret."""
    await check_url(body.url, allow_private)
    endpoint = await repository.insert_endpoint(
        session,
        {
            "id": uuid.uuid4(),
            "org_id": principal.org_id,
            "url": body.url,
            "description": body.description,
            "enabled_events": body.enabled_events,
        },
    )
    view = await _view(session, principal.org_id, endpoint.id)
    return view, views.with_secret(view, endpoint.secret)


async def get_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> bytes:
    return await _view(session, principal.org_id, endpoint_id)


async def list_endpoints(session: AsyncSession, principal: Principal, query: PageQuery) -> bytes:
    cursor = await resolve_cursor(
        query,
        "webhook endpoint",
        lambda id_, newer: repository.endpoint_cursor(session, principal.org_id, id_, newer),
    )
    return await views.endpoint_page(session, principal.org_id, cursor, query.limit)


async def update_endpoint(
    session: AsyncSession,
    principal: Principal,
    endpoint_id: uuid.UUID,
    body: schemas.WebhookEndpointUpdate,
    *,
    if_match: IfMatch | None,
    allow_private: bool,
) -> bytes:
    endpoint = await _locked(session, principal, endpoint_id, if_match)
    values: dict[str, Any] = {
        field: getattr(body, field) for field in body.model_fields_set if field != "status"
    }
    if body.url is not None:
        await check_url(body.url, allow_private)
    org_id = principal.org_id
    if body.status == "enabled":
        values |= {"status": "enabled", "consecutive_failures": 0}
        values |= {"disabled_reason": None, "disabled_at": None}
        await repository.resume_deliveries(session, org_id, endpoint_id)
    elif body.status == "disabled" and endpoint.status == "enabled":
        values |= {"status": "disabled", "disabled_reason": "manual"}
        values["disabled_at"] = models.NOW
        await repository.pause_deliveries(session, org_id, endpoint_id)
    if values:
        await repository.update_endpoint(session, org_id, endpoint_id, values)
    return await _view(session, org_id, endpoint_id)


async def delete_endpoint(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID, *, if_match: IfMatch | None
) -> bytes:
    await _locked(session, principal, endpoint_id, if_match)
    deleted = await _view(session, principal.org_id, endpoint_id)
    await repository.stop_deliveries(session, principal.org_id, endpoint_id)
    await repository.update_endpoint(
        session, principal.org_id, endpoint_id, {"deleted_at": models.NOW}
    )
    return deleted


async def rotate_secret(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> tuple[bytes, bytes]:
    await _locked(session, principal, endpoint_id, None)
    secret = await repository.rotate_endpoint_secret(session, principal.org_id, endpoint_id)
    view = await _view(session, principal.org_id, endpoint_id)
    return view, views.with_secret(view, secret)


# Deliveries


def _delivery_not_found(delivery_id: uuid.UUID) -> NotFound:
    return NotFound(f"webhook delivery {delivery_id} not found")


async def get_delivery(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID
) -> bytes:
    body = await views.delivery(session, principal.org_id, delivery_id)
    if body is None:
        raise _delivery_not_found(delivery_id)
    return body


async def list_deliveries(
    session: AsyncSession, principal: Principal, query: schemas.DeliveryListQuery
) -> bytes:
    cursor = await resolve_cursor(
        query,
        "webhook delivery",
        lambda id_, newer: repository.delivery_cursor(session, principal.org_id, id_, newer),
    )
    bodies = await repository.delivery_page(session, principal.org_id, query, cursor)
    return page_body(bodies, cursor, query.limit)


async def redeliver(session: AsyncSession, principal: Principal, delivery_id: uuid.UUID) -> bytes:
    delivery = await repository.get_delivery(session, principal.org_id, delivery_id)
    if delivery is None:
        raise _delivery_not_found(delivery_id)
    if delivery.endpoint_id is not None:
        state = await repository.endpoint_state(session, delivery.endpoint_id)
        if state is not None and state[1]:
            raise InvalidRequest(
                f"webhook endpoint {delivery.endpoint_id} was deleted: its deliveries cannot "
                "be sent again"
            )
        if state is not None and state[0] == "disabled":
            raise InvalidRequest(
                f"webhook endpoint {delivery.endpoint_id} is disabled: enable it first"
            )
    await repository.redeliver(session, principal.org_id, delivery_id)
    return await get_delivery(session, principal, delivery_id)


async def list_attempts(
    session: AsyncSession, principal: Principal, delivery_id: uuid.UUID, query: PageQuery
) -> bytes:
    await get_delivery(session, principal, delivery_id)
    cursor = await resolve_cursor(
        query,
        "webhook attempt",
        lambda id_, newer: repository.attempt_cursor(
            session, principal.org_id, delivery_id, id_, newer
        ),
    )
    bodies = await repository.attempt_page(
        session, principal.org_id, delivery_id, cursor, query.limit
    )
    return page_body(bodies, cursor, query.limit)
