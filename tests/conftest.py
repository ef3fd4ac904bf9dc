"""Test harness: a real PostgreSQL, migrated once per run; each test in a rolled-back transaction.

The database server is ``CALLINGBOX_TEST_DATABASE_URL`` when set (any database on it will do: the
run creates its own database beside it and drops it at the end), else the embedded server in
``.callingbox/test``.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from callingbox_server.api.app import create_app
from callingbox_server.core.config import Settings
from tests.fixtures import database, numbers
from tests.fixtures.database import HASH_SECRET
from tests.fixtures.keys import create_key
from tests.fixtures.servers import Server, running_server
from tests.fixtures.tenants import Tenant, make_tenant


def pytest_sessionstart(session: pytest.Session) -> None:
    # The embedded PostgreSQL starts here, once, before pytest-xdist starts its workers (this
    # hook runs before xdist's own): they join the running server instead of racing to initdb
    # it, and inherit the XDG_RUNTIME_DIR that start_embedded_postgres sets, so that every
    # process takes pgserver's one cross-process lock file.
    if not hasattr(session.config, "workerinput"):
        database.server_url()


@pytest.fixture(autouse=True)
def _system_marker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a process, or uses the live server, must be marked ``system``: the
    in-process suite (``make test-fast``) leaves those out, and this keeps the marks honest."""
    if request.node.get_closest_marker("system") is not None:
        return
    if "live_server" in request.fixturenames:
        pytest.fail("a test on the live server must be marked system (@pytest.mark.system)")

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail("a test that starts a process must be marked system (@pytest.mark.system)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this run (for each xdist worker), at the latest migration."""
    with database.new_database(database.server_url(), "callingbox_test") as url:
        yield url


@pytest.fixture
def area_code() -> str:
    """An area code whose hundred sandbox numbers no other test uses."""
    return numbers.area_code()


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
    return (await create_key(async_sessionmaker(engine))).secret


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts; any still running at the end are stopped."""
    started: list[Server] = []
    yield started
    for server in started:
        server.close()
