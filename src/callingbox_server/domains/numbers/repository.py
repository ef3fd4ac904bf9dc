"""Every SQL statement about numbers, each scoped by org (see core.db.scoping)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from callingbox_server.core import models
from callingbox_server.core.db.driver import DriverStatement, driver_fetch, for_driver
from callingbox_server.core.db.scoping import org_scoped
from callingbox_server.core.db.wire import as_bytes, json_of, wire_column
from callingbox_server.core.pagination import (
    Cursor,
    KeysetDirection,
    keyset,
    keyset_direction,
    keyset_params,
)
from callingbox_server.domains.numbers.providers import OfferedNumber
from callingbox_server.domains.numbers.schemas import Number

N = models.Number
# Its own alias, so the subqueries below still correlate when an outer query joins agent_numbers.
_link = aliased(models.AgentNumber)

_inbound_agent_id = (
    select(_link.agent_id)
    .where(_link.number_id == N.id, _link.agent_type == "inbound")
    .correlate(N)
    .scalar_subquery()
)
_outbound_agent_ids = (
    select(
        func.coalesce(
            func.array_agg(aggregate_order_by(_link.agent_id, _link.seq)),
            literal([], ARRAY(UUID(as_uuid=True))),
        )
    )
    .where(_link.number_id == N.id, _link.agent_type == "outbound")
    .correlate(N)
    .scalar_subquery()
)
_DERIVED: dict[str, ColumnElement[Any]] = {
    "inbound_agent_id": _inbound_agent_id,
    "outbound_agent_ids": _outbound_agent_ids,
}
# A number as the API shows it, with who answers it and who calls from it: one column per field
# of the wire schema, in its order (the field list is the schema's, written once).
NUMBER_COLUMNS: dict[str, ColumnElement[Any]] = {
    name: _DERIVED[name].label(name) if name in _DERIVED else getattr(N, name)
    for name in Number.model_fields
}


def number_json() -> ColumnElement[Any]:
    """A number as its wire JSON, for a query whose FROM has ``numbers``: rendered by PostgreSQL
    (see core.db.wire), the one representation every number response sends."""
    wire = select(*(wire_column(Number, name, column) for name, column in NUMBER_COLUMNS.items()))
    return json_of(wire.correlate(N), "number", lateral=True)


def _select_bodies() -> Select[Any]:
    return select(as_bytes(number_json()).label("body")).select_from(N)


# Reads of numbers run on the driver (see driver_fetch): one statement each, no transaction.
_GET = for_driver(org_scoped(_select_bodies(), N).where(N.id == bindparam("number_id")))
_CURSOR = for_driver(
    org_scoped(select(N.purchased_at, N.id), N).where(N.id == bindparam("number_id"))
)


@lru_cache
def _page(direction: KeysetDirection) -> DriverStatement:
    statement = org_scoped(_select_bodies(), N).where(N.status == bindparam("status"))
    columns = models.Number.__table__.c
    return for_driver(keyset(statement, columns.purchased_at, columns.id, direction))


async def get_body(session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID) -> bytes | None:
    """The number's wire JSON; None when the org has no such number."""
    rows = await driver_fetch(session, _GET, {"org_id": org_id, "number_id": number_id})
    return rows[0]["body"] if rows else None


async def get_cursor(
    session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID, newer: bool
) -> Cursor | None:
    rows = await driver_fetch(session, _CURSOR, {"org_id": org_id, "number_id": number_id})
    return Cursor(rows[0]["purchased_at"], rows[0]["id"], newer) if rows else None


async def list_page(
    session: AsyncSession, org_id: uuid.UUID, status: str, cursor: Cursor | None, limit: int
) -> list[bytes]:
    """The wire JSON of up to ``limit`` + 1 numbers (the extra one says whether there are more)."""
    params = {"org_id": org_id, "status": status, **keyset_params(cursor, limit)}
    rows = await driver_fetch(session, _page(keyset_direction(cursor)), params)
    return [row["body"] for row in rows]


async def active_among(session: AsyncSession, phone_numbers: Sequence[str]) -> set[str]:
    """Which of these phone numbers some org (any org) owns now: a phone number is one
    across orgs, so this is the one statement not scoped by org."""
    if not phone_numbers:
        return set()
    statement = select(N.e164).where(N.status == "active", N.e164.in_(phone_numbers))
    return set((await session.scalars(statement)).all())


async def insert_purchased(
    session: AsyncSession, org_id: uuid.UUID, offer: OfferedNumber
) -> uuid.UUID | None:
    """Record a purchase; None when another org's purchase of the number won the race."""
    statement = (
        insert(N)
        .values(
            id=uuid.uuid4(),
            org_id=org_id,
            e164=offer.phone_number,
            friendly_name=offer.friendly_name,
            country_code=offer.country_code,
            number_type=offer.number_type,
            monthly_cost_cents=offer.monthly_cost_cents,
        )
        .on_conflict_do_nothing(index_elements=[N.e164], index_where=text("status = 'active'"))
        .returning(N.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def lock_active(
    session: AsyncSession, org_id: uuid.UUID, number_ids: Sequence[uuid.UUID], *, exclusive: bool
) -> set[uuid.UUID]:
    """Lock the org's active numbers among these ids and return those found.

    Lock order across the code base: numbers first, then agents (by id). Attaching takes a
    shared lock, releasing an exclusive one, so a number cannot be attached while it is released.
    """
    if not number_ids:
        return set()
    statement = (
        org_scoped(select(N.id), N, org_id)
        .where(N.status == "active", N.id.in_(number_ids))
        .order_by(N.id)
        .with_for_update(read=not exclusive)
    )
    return set((await session.scalars(statement)).all())


async def mark_released(session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID) -> str:
    """Release the number; returns its phone number, for the provider."""
    statement = (
        org_scoped(update(N), N, org_id)
        .where(N.id == number_id)
        .values(status="released", released_at=func.statement_timestamp())
        .returning(N.e164)
    )
    return (await session.execute(statement)).scalar_one()
