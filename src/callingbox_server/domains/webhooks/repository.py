"""Every SQL statement the webhook API runs, each scoped by org (see core.db.scoping).

The runner's statements (fan-out, claims, recording attempts) are in ``queue_sql``.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import DriverStatement, driver_fetch, for_driver
from callingbox_server.core.db.scoping import org_scoped
from callingbox_server.core.db.wire import as_bytes, json_of, wire_column
from callingbox_server.core.models.webhooks import NEW_SECRET
from callingbox_server.core.pagination import (
    Cursor,
    KeysetDirection,
    keyset,
    keyset_direction,
    keyset_params,
)
from callingbox_server.domains.webhooks import schemas

W = models.WebhookEndpoint
D = models.WebhookDelivery
A = models.WebhookAttempt
S = models.OrgSigningSecret
# NOTIFY channel: a delivery made due by the API (redeliver, an endpoint enabled) wakes runners.
CHANNEL = "callingbox_webhooks"
_NOW = func.statement_timestamp()


# A delivery an attempt is under way for: leased, the lease not yet over. The API never moves
# one's due time, so no second runner can claim it while the first is still sending.
_IN_FLIGHT = and_(D.lease_token.is_not(None), D.next_attempt_at > _NOW)
_AT_REST = or_(D.lease_token.is_(None), D.next_attempt_at <= _NOW)


def _c(model: Any) -> Any:
    """A model's table columns (what ``keyset`` orders by)."""
    return model.__table__.c


def _json(model: type[BaseModel], table: Any, alias: str) -> ColumnElement[Any]:
    """A row of ``table`` as the wire JSON of ``model``: its fields, in order (see core.db.wire)."""
    wire = select(*(wire_column(model, name, getattr(table, name)) for name in model.model_fields))
    return as_bytes(json_of(wire.correlate(table), alias, lateral=True)).label("body")


def _bodies(model: type[BaseModel], table: Any, alias: str) -> Select[Any]:
    return select(_json(model, table, alias)).select_from(table)


_ENDPOINTS = org_scoped(_bodies(schemas.WebhookEndpoint, W, "endpoint"), W).where(
    W.deleted_at.is_(None)
)
_DELIVERIES = org_scoped(_bodies(schemas.WebhookDelivery, D, "delivery"), D)
_VIEW_ENDPOINT = for_driver(_ENDPOINTS.where(W.id == bindparam("id")))
_VIEW_DELIVERY = for_driver(_DELIVERIES.where(D.id == bindparam("id")))


async def _one(
    session: AsyncSession, statement: DriverStatement, org_id: uuid.UUID, id_: uuid.UUID
) -> bytes | None:
    rows = await driver_fetch(session, statement, {"org_id": org_id, "id": id_})
    return rows[0]["body"] if rows else None


async def endpoint_body(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> bytes | None:
    return await _one(session, _VIEW_ENDPOINT, org_id, endpoint_id)


async def delivery_body(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID
) -> bytes | None:
    return await _one(session, _VIEW_DELIVERY, org_id, delivery_id)


@lru_cache
def _endpoint_page(direction: KeysetDirection) -> DriverStatement:
    return for_driver(keyset(_ENDPOINTS, _c(W).created_at, _c(W).id, direction))


@lru_cache
def _delivery_page(
    by_endpoint: bool, by_call: bool, by_status: bool, direction: KeysetDirection
) -> DriverStatement:
    page = _DELIVERIES
    if by_endpoint:
        page = page.where(D.endpoint_id == bindparam("endpoint_id"))
    if by_call:
        page = page.where(D.call_id == bindparam("call_id"))
    if by_status:
        page = page.where(D.status == bindparam("status"))
    return for_driver(keyset(page, _c(D).created_at, _c(D).id, direction))


@lru_cache
def _attempt_page(direction: KeysetDirection) -> DriverStatement:
    page = org_scoped(_bodies(schemas.WebhookAttempt, A, "attempt"), A).where(
        A.delivery_id == bindparam("delivery_id")
    )
    return for_driver(keyset(page, _c(A).started_at, _c(A).id, direction))


async def endpoint_page(
    session: AsyncSession, org_id: uuid.UUID, cursor: Cursor | None, limit: int
) -> list[bytes]:
    params = {"org_id": org_id, **keyset_params(cursor, limit)}
    rows = await driver_fetch(session, _endpoint_page(keyset_direction(cursor)), params)
    return [row["body"] for row in rows]


async def delivery_page(
    session: AsyncSession,
    org_id: uuid.UUID,
    query: schemas.DeliveryListQuery,
    cursor: Cursor | None,
) -> list[bytes]:
    statement = _delivery_page(
        query.endpoint_id is not None,
        query.call_id is not None,
        query.status is not None,
        keyset_direction(cursor),
    )
    params = {
        "org_id": org_id,
        "endpoint_id": query.endpoint_id,
        "call_id": query.call_id,
        "status": query.status,
        **keyset_params(cursor, query.limit),
    }
    return [row["body"] for row in await driver_fetch(session, statement, params)]


async def attempt_page(
    session: AsyncSession,
    org_id: uuid.UUID,
    delivery_id: uuid.UUID,
    cursor: Cursor | None,
    limit: int,
) -> list[bytes]:
    params = {"org_id": org_id, "delivery_id": delivery_id, **keyset_params(cursor, limit)}
    rows = await driver_fetch(session, _attempt_page(keyset_direction(cursor)), params)
    return [row["body"] for row in rows]


def _cursor_statement(table: Any, created_at: Any, *where: Any) -> DriverStatement:
    return for_driver(
        org_scoped(select(created_at.label("created_at"), table.id), table).where(
            table.id == bindparam("id"), *where
        )
    )


_ENDPOINT_CURSOR = _cursor_statement(W, W.created_at, W.deleted_at.is_(None))
_DELIVERY_CURSOR = _cursor_statement(D, D.created_at)
_ATTEMPT_CURSOR = _cursor_statement(A, A.started_at, A.delivery_id == bindparam("delivery_id"))


async def _cursor(
    session: AsyncSession, statement: DriverStatement, params: dict[str, Any], newer: bool
) -> Cursor | None:
    rows = await driver_fetch(session, statement, params)
    return Cursor(rows[0]["created_at"], rows[0]["id"], newer) if rows else None


async def endpoint_cursor(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, newer: bool
) -> Cursor | None:
    return await _cursor(session, _ENDPOINT_CURSOR, {"org_id": org_id, "id": endpoint_id}, newer)


async def delivery_cursor(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID, newer: bool
) -> Cursor | None:
    return await _cursor(session, _DELIVERY_CURSOR, {"org_id": org_id, "id": delivery_id}, newer)


async def attempt_cursor(
    session: AsyncSession,
    org_id: uuid.UUID,
    delivery_id: uuid.UUID,
    attempt_id: uuid.UUID,
    newer: bool,
) -> Cursor | None:
    params = {"org_id": org_id, "id": attempt_id, "delivery_id": delivery_id}
    return await _cursor(session, _ATTEMPT_CURSOR, params, newer)


# Writes


async def get_endpoint(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> models.WebhookEndpoint | None:
    statement = (
        org_scoped(select(W), W, org_id)
        .where(W.id == endpoint_id, W.deleted_at.is_(None))
        .execution_options(populate_existing=True)
    )
    if for_update:
        statement = statement.with_for_update()
    return (await session.scalars(statement)).first()


async def insert_endpoint(session: AsyncSession, values: dict[str, Any]) -> models.WebhookEndpoint:
    statement = insert(W).values(values).returning(W)
    return (await session.scalars(statement)).one()


async def update_endpoint(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID, values: dict[str, Any]
) -> models.WebhookEndpoint:
    statement = (
        org_scoped(update(W), W, org_id)
        .where(W.id == endpoint_id)
        .values(**values, updated_at=_NOW)
        .returning(W)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


async def rotate_endpoint_secret(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> str:
    endpoint = await update_endpoint(session, org_id, endpoint_id, {"secret": NEW_SECRET})
    return endpoint.secret


async def pause_deliveries(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    """An endpoint disabled: its pending deliveries wait (``next_attempt_at`` null); one in
    flight is paused when its attempt is recorded."""
    await session.execute(
        org_scoped(update(D), D, org_id)
        .where(D.endpoint_id == endpoint_id, D.status == "pending", _AT_REST)
        .values(next_attempt_at=None, updated_at=_NOW)
    )


async def resume_deliveries(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> None:
    """An endpoint enabled: its paused deliveries are due at once."""
    await session.execute(
        org_scoped(update(D), D, org_id)
        .where(D.endpoint_id == endpoint_id, D.status == "pending", D.next_attempt_at.is_(None))
        .values(next_attempt_at=_NOW, updated_at=_NOW)
    )
    await wake_runners(session)


async def stop_deliveries(session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """An endpoint deleted: its pending deliveries end, never to be sent again. One in flight
    ends too: its runner records the attempt and keeps it ended (unless it succeeded)."""
    await session.execute(
        org_scoped(update(D), D, org_id)
        .where(D.endpoint_id == endpoint_id, D.status == "pending")
        .values(
            status="exhausted",
            next_attempt_at=None,
            last_error="webhook endpoint deleted",
            updated_at=_NOW,
        )
    )


async def get_delivery(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID
) -> models.WebhookDelivery | None:
    statement = (
        org_scoped(select(D), D, org_id)
        .where(D.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).first()


async def endpoint_state(session: AsyncSession, endpoint_id: uuid.UUID) -> tuple[str, bool] | None:
    """An endpoint's status and whether it was deleted (deliveries keep naming deleted ones)."""
    row = (
        await session.execute(
            select(W.status, W.deleted_at.is_not(None)).where(W.id == endpoint_id)
        )
    ).first()
    return None if row is None else (row[0], bool(row[1]))


async def redeliver(session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """Pending again, due now, same id; the next attempt is a manual one (after the attempt in
    flight, if there is one: its runner sees the request when it records)."""
    await session.execute(
        org_scoped(update(D), D, org_id)
        .where(D.id == delivery_id)
        .values(
            status="pending",
            next_attempt_at=case((_IN_FLIGHT, D.next_attempt_at), else_=_NOW),
            next_trigger="manual",
            manual_retry_count=D.manual_retry_count + 1,
            updated_at=_NOW,
        )
    )
    await wake_runners(session)


async def wake_runners(session: AsyncSession) -> None:
    await session.execute(select(func.pg_notify(CHANNEL, "")))


# The org's default signing secret (inline webhook URLs)


async def org_secret(session: AsyncSession, org_id: uuid.UUID, *, rotate: bool = False) -> str:
    """The org's default signing secret, made on first use; ``rotate`` replaces it."""
    statement = insert(S).values(org_id=org_id)
    if rotate:
        statement = statement.on_conflict_do_update(
            index_elements=[S.org_id], set_={"secret": NEW_SECRET, "updated_at": _NOW}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=[S.org_id])
    await session.execute(statement)
    secret: str = (await session.scalars(select(S.secret).where(S.org_id == org_id))).one()
    return secret
