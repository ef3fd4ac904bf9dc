"""The number rules that span the provider and other tables: search, purchase, release."""

from __future__ import annotations

import json
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.errors import InvalidRequest, NotFound, NumberUnavailable
from callingbox_server.core.pagination import resolve_cursor
from callingbox_server.core.preconditions import IfMatch, require_match
from callingbox_server.core.principal import Principal
from callingbox_server.domains.bindings import service as bindings
from callingbox_server.domains.events import repository as events
from callingbox_server.domains.numbers import repository, schemas, views
from callingbox_server.domains.numbers.providers import (
    NumbersProvider,
    SearchCriteria,
    is_area_code,
)


async def get_number(session: AsyncSession, principal: Principal, number_id: uuid.UUID) -> bytes:
    """The number's wire JSON (see views)."""
    number = await views.read(session, principal.org_id, number_id)
    if number is None:
        raise NotFound(f"number {number_id} not found")
    return number


async def list_numbers(
    session: AsyncSession, principal: Principal, query: schemas.NumberListQuery
) -> bytes:
    cursor = await resolve_cursor(
        query,
        "number",
        lambda number_id, newer: repository.get_cursor(session, principal.org_id, number_id, newer),
    )
    return await views.page(session, principal.org_id, query.status, cursor, query.limit)


async def search_available(
    session: AsyncSession, provider: NumbersProvider, query: schemas.AvailableQuery
) -> schemas.AvailableNumbers:
    if query.area_code is not None and not is_area_code(query.area_code):
        raise InvalidRequest(f"invalid query parameter area_code: {query.area_code} is not in use")
    offers = await provider.search(
        SearchCriteria(query.country_code, query.area_code, query.number_type)
    )
    owned = await repository.active_among(session, [offer.phone_number for offer in offers])
    free = [offer for offer in offers if offer.phone_number not in owned][: query.limit]
    return schemas.AvailableNumbers(
        data=[schemas.AvailableNumber.model_validate(offer) for offer in free]
    )


async def purchase_number(
    session: AsyncSession,
    principal: Principal,
    provider: NumbersProvider,
    body: schemas.PurchaseRequest,
) -> bytes:
    unavailable = NumberUnavailable(f"phone number {body.phone_number} is not available")
    if await repository.active_among(session, [body.phone_number]):
        raise unavailable
    offer = await provider.quote(body.phone_number)
    if offer is None:
        raise InvalidRequest(f"phone number {body.phone_number} is not offered by the provider")
    # Claim the number in our database first: only the winner of a race talks to the provider,
    # and a provider failure rolls the claim back.
    number_id = await repository.insert_purchased(session, principal.org_id, offer)
    if number_id is None:
        raise unavailable
    await provider.purchase(offer)
    number = await get_number(session, principal, number_id)
    data = {"number": json.loads(number)}
    await events.record(session, org_id=principal.org_id, type="number.purchased", data=data)
    return number


async def release_number(
    session: AsyncSession,
    principal: Principal,
    provider: NumbersProvider,
    number_id: uuid.UUID,
    *,
    if_match: IfMatch | None = None,
) -> bytes:
    active = await repository.lock_active(session, principal.org_id, [number_id], exclusive=True)
    if if_match is not None:
        current = await get_number(session, principal, number_id)  # 404 before 412
        require_match(if_match, current, f"number {number_id}")
    if not active:
        return await get_number(session, principal, number_id)  # released already, or 404
    await bindings.detach_everywhere(session, principal.org_id, number_id)
    e164 = await repository.mark_released(session, principal.org_id, number_id)
    released = await get_number(session, principal, number_id)
    data = {"number": json.loads(released)}
    await events.record(session, org_id=principal.org_id, type="number.released", data=data)
    await provider.release(e164)
    return released
