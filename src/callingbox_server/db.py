"""The engine, and the request session: the one place that commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.compiler import SQLCompiler

from callingbox_server import outages
from callingbox_server.config import Settings
from callingbox_server.metrics import ObservedPool

APPLICATION_NAME = "callingbox-server"


def create_engine(database_url: str, settings: Settings) -> AsyncEngine:
    """A pool whose every wait is bounded, and that never hands out a connection known broken."""
    engine = create_async_engine(
        database_url,
        poolclass=ObservedPool,  # asyncpg's default pool, reporting waits to the metrics
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_args={
            "timeout": settings.db_connect_timeout,
            # asyncpg's own timeout on every statement, also ROLLBACK and the pool's reset.
            "command_timeout": settings.db_command_timeout,
            "server_settings": {"application_name": APPLICATION_NAME},
        },
    )
    outages.discard_broken_connections(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit when the endpoint returns, roll back when it raises; both before the response."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


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
        # connection is closed at once and never goes back to the pool (http.py answers 503).
        # One closed under an earlier statement of this request fails with InterfaceError.
        broken = driver.is_closed() or outages.is_connection_failure(exc)
        if not broken:
            raise
        driver.terminate()
        await connection.invalidate(exc)
        if outages.is_connection_failure(exc):
            raise
        raise ConnectionError("the database connection was closed") from exc
    return rows
