"""Reads on the session's own asyncpg connection, for the hot paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

from callingbox_server.core.db import outages

# The hot read paths run their statements on the session's own asyncpg connection, skipping the
# ORM and SQLAlchemy's execution layers (most of a read's CPU). A session that has not started
# a transaction does not start one for them: a read of one statement needs no BEGIN and COMMIT.
# In a transaction (a write rendering its result) they join it and see its changes.

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement written with SQLAlchemy Core, compiled once for asyncpg: $1, $2, ... are
    its parameters ``names``, given at each call or else the values the statement was built with
    (its literals)."""

    sql: str
    names: tuple[str, ...]
    built_with: Mapping[str, Any]


def for_driver(statement: ClauseElement) -> DriverStatement:
    compiled = statement.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    return DriverStatement(str(compiled), tuple(compiled.positiontup or ()), compiled.params)


async def driver_fetch(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record]:
    """Rows of ``statement`` on the session's connection, after flushing pending ORM changes."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection[asyncpg.Record] | None = raw.driver_connection
    assert driver is not None
    try:
        rows: Sequence[asyncpg.Record] = await driver.fetch(
            statement.sql,
            *(params[n] if n in params else statement.built_with[n] for n in statement.names),
        )
    except Exception as exc:
        # As outages.discard_broken_connections does for SQLAlchemy's own statements: a broken
        # connection is closed at once and never goes back to the pool (the middleware answers 503).
        # One closed under an earlier statement of this request fails with InterfaceError.
        broken = driver.is_closed() or outages.is_connection_failure(exc)
        if not broken:
            raise
        driver.terminate()
        await connection.invalidate(exc)
        # Noted as handle_error notes SQLAlchemy's: after a timeout, requests queued for their
        # org's share (taken before the key check, see api.dependencies.identify) are answered
        # 503 at once.
        outages.note_failure(exc)
        if outages.is_connection_failure(exc):
            raise
        raise ConnectionError("the database connection was closed") from exc
    return rows
