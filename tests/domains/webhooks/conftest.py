"""Webhook delivery needs committed rows (the runner reads them on connections of its own): an
app on the real engine, orgs committed through the real key path, and the runner in-process on
the real due-work loop (worker/queue.py), with a tiny retry scale."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from callingbox_server.api.app import create_app
from callingbox_server.core.config import Settings
from callingbox_server.domains.events import repository as events
from callingbox_server.domains.events.types import EventType
from callingbox_server.domains.webhooks.tasks import WebhookWork
from callingbox_server.worker.queue import QueueRunner
from tests.fixtures import database
from tests.fixtures.database import HASH_SECRET, asyncpg_dsn
from tests.fixtures.keys import create_key
from tests.fixtures.tenants import Tenant

SCALE = 0.0005  # the whole schedule (about 36 h) in about a minute; its first steps in ms


@pytest.fixture(scope="session")
def hooks_database_url() -> Iterator[str]:
    """A database of these tests' own: a ``serve`` on the shared test database (the live
    server) runs a webhook runner too, which would claim these tests' deliveries."""
    with database.new_database(database.server_url(), "callingbox_webhooks") as url:
        yield url


@pytest.fixture(scope="session")
async def hooks_engine(hooks_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(hooks_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def committed_app(hooks_database_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=hooks_database_url,
        key_hash_secret=HASH_SECRET,
        serve_runs_worker=False,
        webhook_allow_private=True,
    )
    app = create_app(settings)
    yield app
    await app.state.engine.dispose()


async def _committed_org(app: FastAPI, engine: AsyncEngine) -> AsyncIterator[Tenant]:
    created = await create_key(async_sessionmaker(engine))
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {created.secret}"},
    )
    async with client:
        yield Tenant(created.org_id, created.id, created.secret, client)
    await _settle(engine, created.org_id)


@pytest.fixture
async def org(committed_app: FastAPI, hooks_engine: AsyncEngine) -> AsyncIterator[Tenant]:
    """A committed org, and a client of the app whose every request commits."""
    async for tenant in _committed_org(committed_app, hooks_engine):
        yield tenant


@pytest.fixture
async def other_org(committed_app: FastAPI, hooks_engine: AsyncEngine) -> AsyncIterator[Tenant]:
    async for tenant in _committed_org(committed_app, hooks_engine):
        yield tenant


async def _settle(engine: AsyncEngine, org_id: uuid.UUID) -> None:
    """What a test leaves pending is not attempted by later tests' runners."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE webhook_deliveries SET status = 'exhausted', next_attempt_at = NULL "
                "WHERE status = 'pending' AND org_id = :org_id"
            ),
            {"org_id": org_id},
        )


@pytest.fixture
def dsn(hooks_database_url: str) -> str:
    return asyncpg_dsn(hooks_database_url)


@asynccontextmanager
async def running(dsn: str, *works: WebhookWork, poll_interval: float = 1.0) -> AsyncIterator[None]:
    runner = QueueRunner(dsn, works, pool_size=4, poll_interval=poll_interval, connect_timeout=5)
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def webhook_work(**options: Any) -> WebhookWork:
    return WebhookWork(retry_scale=options.pop("retry_scale", SCALE), allow_private=True, **options)


@pytest.fixture
async def runner(dsn: str) -> AsyncIterator[WebhookWork]:
    """The webhook runner, running for the test."""
    work = webhook_work()
    async with running(dsn, work):
        yield work


async def create_endpoint(tenant: Tenant, url: str, **fields: Any) -> dict[str, Any]:
    r = await tenant.client.post("/v1/webhook_endpoints", json={"url": url, **fields})
    assert r.status_code == 201, r.text
    endpoint: dict[str, Any] = r.json()
    return endpoint


async def record_event(
    engine: AsyncEngine,
    org_id: uuid.UUID,
    type: EventType,
    data: dict[str, Any],
    call_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An event committed as a domain writes it (the transactional outbox)."""
    async with async_sessionmaker(engine)() as session, session.begin():
        return await events.record(session, org_id=org_id, type=type, data=data, call_id=call_id)


async def fetch(dsn: str, statement: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


async def wait_until(check: Any, within: float = 15.0) -> Any:
    """Poll ``check`` (an async callable) until it returns something truthy; bounded."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {within}s: {value!r}")
        await asyncio.sleep(0.02)


async def org_secret(engine: AsyncEngine, org_id: uuid.UUID) -> str:
    async with engine.connect() as connection:
        statement = text("SELECT secret FROM org_signing_secrets WHERE org_id = :org_id")
        secret: str = (await connection.execute(statement, {"org_id": org_id})).scalar_one()
        return secret
