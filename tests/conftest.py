"""Test harness: a real PostgreSQL, migrated once per run; each test in a rolled-back transaction.

The database server is ``CALLINGBOX_TEST_DATABASE_URL`` when set (any database on it will do: the
run creates its own database beside it and drops it at the end), else the embedded server in
``.callingbox/test``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
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

from callingbox_server import keys, migrate
from callingbox_server.config import Settings, to_asyncpg_url
from callingbox_server.main import create_app
from callingbox_server.runtime import start_embedded_postgres

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_DIR = ROOT / ".callingbox" / "test"
HASH_SECRET = "test-key-hash-secret"


def _server_url() -> str:
    external = os.environ.get("CALLINGBOX_TEST_DATABASE_URL")
    if external:
        return to_asyncpg_url(external)
    TEST_DATA_DIR.mkdir(parents=True, exist_ok=True)
    return start_embedded_postgres(TEST_DATA_DIR)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def admin_execute(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this run, at the latest migration."""
    import asyncio

    server_url = _server_url()
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


@dataclass(frozen=True)
class Tenant:
    """An org with a key, and a client that sends it."""

    org_id: uuid.UUID
    key_id: uuid.UUID
    key: str
    client: httpx.AsyncClient


async def make_tenant(
    sessionmaker: async_sessionmaker[AsyncSession], app: FastAPI, name: str
) -> Tenant:
    async with sessionmaker() as session:
        created = await keys.create_key(
            session, org_name=f"{name}-{uuid.uuid4().hex[:8]}", hash_secret=HASH_SECRET.encode()
        )
        await session.commit()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {created.secret}"},
    )
    return Tenant(created.org_id, created.id, created.secret, client)


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


# A real server process, for races and for the official client: these need real commits and
# real concurrent connections, so they work outside the rolled-back transaction.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str, *, log_level: str = "warning", output: IO[bytes] | None = None
) -> Iterator[str]:
    """A ``callingbox-server serve`` process on a free port; yields its base URL once ready."""
    port = free_port()
    env = {
        **os.environ,
        "CALLINGBOX_DATABASE_URL": database_url,
        "CALLINGBOX_KEY_HASH_SECRET": HASH_SECRET,
        "CALLINGBOX_LOG_LEVEL": log_level,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "callingbox_server.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the live server did not become ready")
            time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=15)


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
