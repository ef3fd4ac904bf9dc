"""Fair sharing between orgs: the limiter itself, its 429 as a client gets it, and (marked
``system``) issue 14's burst against a real server, and a busy pool answered as overloaded."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from callingbox_server.api.app import create_app
from callingbox_server.core.config import Settings
from callingbox_server.core.db import outages
from callingbox_server.core.errors import RateLimited, ServiceUnavailable
from callingbox_server.core.fair_share import FairShare
from callingbox_server.domains.keys import service as keys
from tests.fixtures.database import HASH_SECRET, asyncpg_dsn
from tests.fixtures.factories import error
from tests.fixtures.servers import running_server

ORG = uuid.uuid4()
OTHER = uuid.uuid4()


async def nothing() -> None:
    pass


class TestConcurrency:
    async def test_requests_beyond_the_share_wait_and_get_slots_in_order(self) -> None:
        share = FairShare(concurrency=2, rate=0, queue_timeout=5)
        await share.acquire(ORG, nothing)
        await share.acquire(ORG, nothing)
        order: list[int] = []

        async def queued(n: int) -> None:
            await share.acquire(ORG, nothing)
            order.append(n)

        waiting = [asyncio.create_task(queued(n)) for n in range(3)]
        await asyncio.sleep(0.01)
        assert order == []
        share.release(ORG)
        share.release(ORG)
        await asyncio.sleep(0.01)
        assert order == [0, 1]
        share.release(ORG)
        await asyncio.gather(*waiting)
        assert order == [0, 1, 2]
        assert share.orgs[ORG].active == 2

    async def test_another_org_is_not_held_up(self) -> None:
        share = FairShare(concurrency=1, rate=0, queue_timeout=5)
        await share.acquire(ORG, nothing)

        async with asyncio.timeout(0.1):
            await share.acquire(OTHER, nothing)

    async def test_the_connection_is_given_back_before_waiting(self) -> None:
        share = FairShare(concurrency=1, rate=0, queue_timeout=5)
        given_back: list[str] = []

        async def give_back() -> None:
            given_back.append("connection")

        await share.acquire(ORG, give_back)
        assert given_back == []  # a free slot: nothing to give back
        waiter = asyncio.create_task(share.acquire(ORG, give_back))
        await asyncio.sleep(0.01)
        assert given_back == ["connection"]
        share.release(ORG)
        await waiter

    @pytest.mark.parametrize(
        ("failure", "answered"),
        [
            (TimeoutError(), "503"),  # a statement or a connect timed out: the database hangs
            (asyncpg.exceptions.AdminShutdownError("terminated"), "slot"),  # a backend ended
            (ConnectionRefusedError(), "slot"),  # a refused connect answers at once anyway
        ],
    )
    async def test_a_waiter_is_answered_503_at_once_only_after_a_timeout(
        self, monkeypatch: pytest.MonkeyPatch, failure: BaseException, answered: str
    ) -> None:
        monkeypatch.setattr(outages, "_last_failure", -outages.OUTAGE_MEMORY_SECONDS)
        monkeypatch.setattr(outages, "_last_stall", -outages.OUTAGE_MEMORY_SECONDS)
        share = FairShare(concurrency=1, rate=0, queue_timeout=5)
        await share.acquire(ORG, nothing)
        waiter = asyncio.create_task(share.acquire(ORG, nothing))
        await asyncio.sleep(0.01)
        outages.note_failure(failure)  # the request ahead failed so
        share.release(ORG)

        if answered == "503":
            with pytest.raises(ServiceUnavailable):
                await waiter
            assert share.orgs[ORG].active == 0  # the slot it was handed went back
        else:
            await waiter
            assert share.orgs[ORG].active == 1
        assert outages.last_failure() > 0

    async def test_a_wait_past_the_timeout_is_429_concurrency(self) -> None:
        share = FairShare(concurrency=1, rate=100, queue_timeout=0.05)
        await share.acquire(ORG, nothing)

        with pytest.raises(RateLimited) as raised:
            await share.acquire(ORG, nothing)

        assert raised.value.message == (
            "too many concurrent requests for this organization: at most 1 at once, and none"
            " finished within 0.05 s; retry after 1 second"
        )
        assert raised.value.headers == {
            "Retry-After": "1",
            "RateLimit-Policy": '"requests";q=100;w=1, "concurrency";q=1;qu="concurrent-requests"',
            "RateLimit": '"concurrency";r=0',
        }
        assert not share.orgs[ORG].waiters
        share.release(ORG)
        assert share.orgs[ORG].active == 0

    async def test_a_cancelled_waiter_leaks_no_slot(self) -> None:
        share = FairShare(concurrency=1, rate=0, queue_timeout=5)
        await share.acquire(ORG, nothing)
        waiter = asyncio.create_task(share.acquire(ORG, nothing))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

        share.release(ORG)
        assert share.orgs[ORG].active == 0
        assert not share.orgs[ORG].waiters


class TestRate:
    async def test_requests_over_the_rate_are_429_until_the_next_second(self) -> None:
        share = FairShare(concurrency=100, rate=3, queue_timeout=5)
        loop = asyncio.get_running_loop()
        # Start at the beginning of a second of the monotonic clock, so all four fall in it.
        await asyncio.sleep(1 - loop.time() % 1 + 0.01)
        for _ in range(3):
            await share.acquire(ORG, nothing)

        with pytest.raises(RateLimited) as raised:
            await share.acquire(ORG, nothing)

        assert raised.value.message == (
            "too many requests for this organization: at most 3 a second; retry after 1 second"
        )
        assert raised.value.headers["RateLimit"] == '"requests";r=0;t=1'
        await share.acquire(OTHER, nothing)  # each org has its own count
        await asyncio.sleep(1)
        await share.acquire(ORG, nothing)

    def test_zero_is_no_rate_limit(self) -> None:
        share = FairShare(concurrency=5, rate=0, queue_timeout=5)

        assert share.policy_header == '"concurrency";q=5;qu="concurrent-requests"'

    def test_the_default_share_is_half_the_pool(self) -> None:
        assert Settings(key_hash_secret="x").org_concurrency == 5
        assert Settings(key_hash_secret="x", db_pool_size=1).org_concurrency == 1
        assert Settings(key_hash_secret="x", org_max_concurrent_requests=8).org_concurrency == 8


@pytest.fixture
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"org_rate_limit": 2}))
    yield app
    await app.state.engine.dispose()


async def committed_key(engine: AsyncEngine, org: str) -> str:
    async with async_sessionmaker(engine)() as session, session.begin():
        created = await keys.create_key(
            session, org_name=f"{org}-{uuid.uuid4().hex}", hash_secret=HASH_SECRET.encode()
        )
    return created.secret


class TestRateLimitedResponse:
    async def test_429_with_retry_after_and_ratelimit_headers(
        self, limited_app: FastAPI, engine: AsyncEngine
    ) -> None:
        key = await committed_key(engine, "limited")
        transport = httpx.ASGITransport(app=limited_app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://testserver",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            statuses = [(await client.get("/v1/agents")) for _ in range(6)]

        refused = [r for r in statuses if r.status_code == 429]
        assert {r.status_code for r in statuses} == {200, 429}
        assert len(refused) >= 2  # at most 2 a second, and six sent in well under 2 seconds
        r = refused[0]
        assert r.json() == error(
            r,
            "too many requests for this organization: at most 2 a second; retry after 1 second",
            "rate_limited",
        )
        assert r.headers["retry-after"] == "1"
        assert r.headers["ratelimit"] == '"requests";r=0;t=1'
        assert r.headers["ratelimit-policy"] == (
            '"requests";q=2;w=1, "concurrency";q=5;qu="concurrent-requests"'
        )


# These time the API's own pool and shares: the background worker (calls, webhooks) that a serve
# process runs by default would start its pools and first rounds in the same event loop, just as
# the bursts begin. It has connections of its own and is tested elsewhere.
API_ONLY = {"CALLINGBOX_SERVE_RUNS_WORKER": "false"}


@pytest.mark.system
@pytest.mark.serial
class TestOneOrgsBurst:
    async def test_sixty_writes_from_one_org_leave_another_orgs_reads_alone(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        """Issue 14 point 7, at make run's defaults: 60 PATCHes of one agent from org c and
        20 agent lists from org d, all 80 at once, a few times over."""
        key_c, key_d = await committed_key(engine, "c"), await committed_key(engine, "d")
        with running_server(database_url, settings=API_ONLY) as base_url:
            async with httpx.AsyncClient(
                base_url=base_url, timeout=30, limits=httpx.Limits(max_connections=100)
            ) as client:
                c = {"Authorization": f"Bearer {key_c}"}
                d = {"Authorization": f"Bearer {key_d}"}
                created = await client.post(
                    "/v1/agents", headers=c, json={"name": "a", "type": "outbound"}
                )
                agent = created.json()["id"]

                async def write(n: int) -> tuple[str, int]:
                    r = await client.patch(f"/v1/agents/{agent}", headers=c, json={"name": f"n{n}"})
                    return "c", r.status_code

                async def read() -> tuple[str, int]:
                    return "d", (await client.get("/v1/agents", headers=d)).status_code

                for _ in range(4):
                    burst = [write(n) for n in range(60)] + [read() for _ in range(20)]
                    random.shuffle(burst)
                    counts = Counter(await asyncio.gather(*burst))

                    assert counts[("d", 200)] == 20, counts
                    assert counts[("c", 200)] == 60, counts


# Outbound agents (half of them archived) in the org whose inbound agents are listed: the one
# list shape without an index of its own (include_archived with a type filter) reads them all,
# some ms of PostgreSQL for a page of nothing, so the pooled connection keeps coming back but
# slowly, whatever the machine, while the server has next to nothing to do per request.
OTHER_AGENTS = 50_000


@pytest.mark.system
@pytest.mark.serial
class TestBusyPool:
    async def test_a_pool_that_cannot_keep_up_is_503_overloaded_not_unavailable(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        """One pooled connection and 600 reads at once: the connection keeps coming back, just
        not fast enough for all of them within the pool timeout, while the database answers."""
        async with async_sessionmaker(engine)() as session, session.begin():
            created = await keys.create_key(
                session, org_name=f"busy-{uuid.uuid4().hex}", hash_secret=HASH_SECRET.encode()
            )
        filler = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            await filler.execute(
                """
                INSERT INTO agents (id, org_id, user_id, name, type, archived_at)
                SELECT gen_random_uuid(), $1, 'busy', 'Busy ' || n, 'outbound',
                       CASE WHEN n % 2 = 0 THEN now() END
                FROM generate_series(1, $2::int) AS n
                """,
                created.org_id,
                OTHER_AGENTS,
            )
        finally:
            await filler.close()
        settings = {
            "CALLINGBOX_DB_POOL_SIZE": "1",
            # 200 reads (the org's most at once) queue for the connection, each some ms of
            # PostgreSQL: the last of them waits far beyond 0.05 s on any machine.
            "CALLINGBOX_DB_POOL_TIMEOUT": "0.05",
            "CALLINGBOX_ORG_MAX_CONCURRENT_REQUESTS": "200",
            "CALLINGBOX_ORG_QUEUE_TIMEOUT": "30",
            **API_ONLY,
        }
        with running_server(database_url, settings=settings) as base_url:
            async with httpx.AsyncClient(
                base_url=base_url,
                timeout=30,
                headers={"Authorization": f"Bearer {created.secret}"},
                limits=httpx.Limits(max_connections=600),
            ) as client:
                # Open the 600 connections first, on a route that needs no database: accepting
                # and parsing 600 new connections at once keeps the event loop from running the
                # request that holds the pooled connection, which would be taken for a stall.
                warm = await asyncio.gather(*(client.get("/healthz") for _ in range(600)))
                assert {r.status_code for r in warm} == {200}
                # Bursts of 600 until one outlasts the pool timeout (at most 5: bounded).
                for _ in range(5):
                    pages = (
                        client.get("/v1/agents", params={"type": "inbound", "include_archived": 1})
                        for _ in range(600)
                    )
                    answers = await asyncio.gather(*pages)
                    if any(r.status_code == 503 for r in answers):
                        break

        statuses = Counter(r.status_code for r in answers)
        assert set(statuses) == {200, 503}, statuses
        busy = [r for r in answers if r.status_code == 503]
        for r in busy:
            assert r.json() == error(
                r,
                "the server is busy: every database connection stayed in use, retry",
                "overloaded",
            )
            assert r.headers["retry-after"] == "1"
