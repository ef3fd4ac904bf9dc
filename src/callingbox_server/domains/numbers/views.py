"""A number's one wire representation: GETs, lists and every mutation response use it."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.domains.numbers import repository
from callingbox_server.domains.numbers.schemas import Number


def render(row: asyncpg.Record) -> Number:
    """A number from a row of ``repository.NUMBER_COLUMNS``."""
    return Number.model_validate(dict(row))


async def read(session: AsyncSession, org_id: uuid.UUID, number_id: uuid.UUID) -> Number | None:
    """The number as stored now: in a transaction, as that transaction sees it."""
    row = await repository.get(session, org_id, number_id)
    return None if row is None else render(row)
