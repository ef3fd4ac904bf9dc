"""Test harness: a real PostgreSQL, migrated once per run; each test in a rolled-back transaction.

The database server is ``CALLINGBOX_TEST_DATABASE_URL`` when set (any database on it will do: the
run creates its own database beside it and drops it at the end), else the embedded server in
``.callingbox/test``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from callingbox_server.api.app import create_app
from callingbox_server.core import migrate
from callingbox_server.core.config import Settings
from callingbox_server.domains.keys import service as keys
from tests.fixtures import database
from tests.fixtures.database import HASH_SECRET, admin_execute
from tests.fixtures.servers import running_server
from tests.fixtures.tenants import Tenant, make_tenant


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this run, at the latest migration."""
    import asyncio

    server_url = database.server_url()
    name = f"callingbox_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    asyncio.run(admin_execute(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, key_hash_secret=HASH_SECRET)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    yield app
    await app.state.engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection in an outer transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        # The app's commits only release savepoints: check the deferred constraints (the primary
        # number is attached) as a real commit would, before the rollback discards everything.
        await connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        await transaction.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Commits inside the app release savepoints; the outer transaction still rolls back.
    return async_sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
async def client(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of the app, on the test's transaction."""
    app.state.sessionmaker = sessionmaker
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def tenant(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> AsyncIterator[Tenant]:
    """The org under test, with an authenticated client."""
    tenant = await make_tenant(sessionmaker, app, "acme")
    async with tenant.client:
        yield tenant


@pytest.fixture
async def other_tenant(
    app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> AsyncIterator[Tenant]:
    """A second org, whose objects the first must never see."""
    tenant = await make_tenant(sessionmaker, app, "globex")
    async with tenant.client:
        yield tenant


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    with running_server(database_url) as base_url:
        yield base_url


@pytest.fixture
async def live_key(engine: AsyncEngine) -> str:
    """A committed key of a fresh org, for requests to the live server."""
    async with async_sessionmaker(engine)() as session, session.begin():
        created = await keys.create_key(
            session, org_name=f"live-{uuid.uuid4().hex}", hash_secret=HASH_SECRET.encode()
        )
    return created.secret
