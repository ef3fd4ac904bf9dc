"""The one wire representation of endpoints, deliveries and attempts: PostgreSQL renders the
bytes (``repository._json``, see core.db.wire) that GETs, lists and mutations send alike."""

from __future__ import annotations

import json
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.pagination import Cursor, page_body
from callingbox_server.domains.webhooks import repository


async def endpoint(
    session: AsyncSession, org_id: uuid.UUID, endpoint_id: uuid.UUID
) -> bytes | None:
    return await repository.endpoint_body(session, org_id, endpoint_id)


def with_secret(body: bytes, secret: str) -> bytes:
    """An endpoint's representation plus ``signing_secret``, as create and rotate answer."""
    return b"%b,%b:%b}" % (body[:-1], b'"signing_secret"', json.dumps(secret).encode())


async def delivery(
    session: AsyncSession, org_id: uuid.UUID, delivery_id: uuid.UUID
) -> bytes | None:
    return await repository.delivery_body(session, org_id, delivery_id)


async def endpoint_page(
    session: AsyncSession, org_id: uuid.UUID, cursor: Cursor | None, limit: int
) -> bytes:
    return page_body(await repository.endpoint_page(session, org_id, cursor, limit), cursor, limit)
