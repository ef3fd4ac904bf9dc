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

from callingbox_server.config import Settings

APPLICATION_NAME = "callingbox-server"


def create_engine(database_url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_connect_timeout,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "server_settings": {"application_name": APPLICATION_NAME},
        },
    )


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
# Connection-level failures of the driver, which http.py answers with 503 like SQLAlchemy's.
_CONNECTION_ERRORS = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    OSError,
)


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
    driver: asyncpg.Connection = raw.driver_connection
    try:
        rows: Sequence[asyncpg.Record] = await driver.fetch(
            statement.sql,
            *(params[n] if n in params else statement.built_with[n] for n in statement.names),
        )
    except _CONNECTION_ERRORS as exc:
        await connection.invalidate(exc)
        raise ConnectionError("the database connection was lost") from exc
    return rows
