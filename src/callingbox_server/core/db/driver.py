"""Statements on the session's own asyncpg connection, for the hot paths."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from callingbox_server.core.db import outages

# The hot read paths run their statements on the session's own asyncpg connection, skipping the
# ORM and SQLAlchemy's execution layers (most of a read's CPU). A session that has not started
# a transaction does not start one for them: a read of one statement needs no BEGIN and COMMIT.
# In a transaction (a write rendering its result) they join it and see its changes; the hot
# writes (an agent's INSERT, an event) run in it the same way. A read served without a session
# (api.direct) runs them on a connection of its own.

Reads = AsyncSession | AsyncConnection | PoolProxiedConnection
"""What a read runs on: a request's session, or a connection without one."""

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement written with SQLAlchemy Core, compiled once for asyncpg: $1, $2, ... are
    its parameters ``names``, given at each call or else the values the statement was built with
    (its literals, converted once). A value given passes through its column's type where that
    converts (``encoders``: a CompactJSON value becomes its JSON text, as SQLAlchemy sends it).
    Python-side column defaults are not applied: an INSERT is given every such value."""

    sql: str
    names: tuple[str, ...]
    built_with: Mapping[str, Any]
    encoders: Mapping[str, Callable[[Any], Any]]


def for_driver(statement: ClauseElement) -> DriverStatement:
    compiled = statement.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ())
    encoders = {
        name: encoder
        for name in names
        if (encoder := compiled.binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT))
    }
    built_with = {
        name: value if (encoder := encoders.get(name)) is None else encoder(value)
        for name, value in compiled.params.items()
    }
    return DriverStatement(str(compiled), names, built_with, encoders)


def _arguments(statement: DriverStatement, params: Mapping[str, Any]) -> list[Any]:
    arguments = []
    for name in statement.names:
        if name not in params:
            arguments.append(statement.built_with[name])
        elif (encoder := statement.encoders.get(name)) is None:
            arguments.append(params[name])
        else:
            arguments.append(encoder(params[name]))
    return arguments


@asynccontextmanager
async def reading_connection(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Reads]:
    """A connection for reads without a session: one of the pool's (checked out as the pool
    hands it, without an engine Connection around it), or the connection the sessionmaker is
    bound to (a test's transaction), whose data the sessions see too."""
    bind = sessionmaker.kw.get("bind")
    if isinstance(bind, AsyncConnection):
        yield bind
        return
    assert isinstance(bind, AsyncEngine)
    pooled = await bind.raw_connection()
    try:
        yield pooled
    finally:
        # Back to the pool, whose reset may talk to the server: SQLAlchemy's async bridge.
        await greenlet_spawn(pooled.close)


async def driver_fetch(
    reads: Reads, statement: DriverStatement, params: Mapping[str, Any]
) -> Sequence[asyncpg.Record]:
    """Rows of ``statement`` on the session's connection (after flushing pending ORM changes),
    or on the connection given."""
    connection: AsyncConnection | None = None
    if isinstance(reads, PoolProxiedConnection):
        raw = reads
    else:
        if isinstance(reads, AsyncConnection):
            connection = reads
        else:
            if reads.new or reads.dirty or reads.deleted:
                await reads.flush()
            connection = await reads.connection()
        raw = await connection.get_raw_connection()
    driver: asyncpg.Connection[asyncpg.Record] | None = raw.driver_connection
    assert driver is not None
    try:
        rows: Sequence[asyncpg.Record] = await driver.fetch(
            statement.sql, *_arguments(statement, params)
        )
    except Exception as exc:
        # As outages.discard_broken_connections does for SQLAlchemy's own statements: a broken
        # connection is closed at once and never goes back to the pool (the middleware answers 503).
        # One closed under an earlier statement of this request fails with InterfaceError.
        broken = driver.is_closed() or outages.is_connection_failure(exc)
        if not broken:
            raise
        driver.terminate()
        if connection is not None:
            await connection.invalidate(exc)
        else:
            await greenlet_spawn(raw.invalidate, exc)
        # Noted as handle_error notes SQLAlchemy's: after a timeout, requests queued for their
        # org's share (taken before the key check, see api.dependencies.identify) are answered
        # 503 at once.
        outages.note_failure(exc)
        if outages.is_connection_failure(exc):
            raise
        raise ConnectionError("the database connection was closed") from exc
    return rows
