"""The cap on concurrent attempts per destination host: a hanging receiver holds at most its cap
of attempts and delays no other host, and a claim takes no more of a host than its room."""

from __future__ import annotations

import time
import uuid

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.domains.webhooks import deliveries
from tests.domains.webhooks.calls import call
from tests.domains.webhooks.conftest import create_endpoint, record_event, running, webhook_work
from tests.domains.webhooks.receivers import Reply, receiving, replies
from tests.fixtures.tenants import Tenant

EVENTS = 5
CAP = 2


async def send_events(org: Tenant, hooks_engine: AsyncEngine, count: int) -> None:
    for _ in range(count):
        call_id = uuid.uuid4()
        data = {"call": call(org.org_id, call_id, "call.completed", None)}
        await record_event(hooks_engine, org.org_id, "call.completed", data, call_id)


class TestHangingHost:
    async def test_holds_at_most_the_cap_and_delays_no_other_host(
        self, org: Tenant, hooks_engine: AsyncEngine, dsn: str
    ) -> None:
        hanging = Reply(delay=2.0)
        with receiving(replies(hanging)) as slow, receiving() as fast:
            await create_endpoint(org, slow.url)
            await create_endpoint(org, fast.url)
            async with running(dsn, webhook_work(max_per_host=CAP)):
                began = time.monotonic()
                await send_events(org, hooks_engine, EVENTS)
                await fast.wait_for(EVENTS, within=10)
                fast_done = time.monotonic() - began
                await slow.wait_for(EVENTS, within=15)

        # Every fast delivery arrived while the slow host's first attempts still hung.
        assert fast_done < hanging.delay, fast_done
        assert slow.max_in_flight == CAP
        assert fast.max_in_flight <= CAP


class TestClaim:
    async def test_takes_no_more_of_a_host_than_its_room(
        self, org: Tenant, hooks_engine: AsyncEngine, dsn: str
    ) -> None:
        # Nothing runs: the statements are called by hand (nothing is sent to these ports).
        slow = await create_endpoint(org, "http://127.0.0.1:9/hook")
        other = await create_endpoint(org, "http://127.0.0.1:10/hook")
        await send_events(org, hooks_engine, EVENTS)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            await deliveries.fan_out(pool, 500)
            claimed = await deliveries.claim(
                pool,
                limit=200,
                busy_hosts=[],
                lease_seconds=15,
                max_per_host=CAP,
                in_flight={"127.0.0.1:9": 1},  # one attempt to the slow host already out
            )
            mine = [c for c in claimed if c.org_id == org.org_id]
            by_endpoint = {str(c.endpoint_id) for c in mine}
            assert sum(str(c.endpoint_id) == slow["id"] for c in mine) == CAP - 1
            assert sum(str(c.endpoint_id) == other["id"] for c in mine) == CAP
            assert by_endpoint == {slow["id"], other["id"]}
            # The rest stay unclaimed: due now, no lease, for the next claim.
            rows = await pool.fetch(
                "SELECT lease_token IS NULL AS free, next_attempt_at <= now() AS due "
                "FROM webhook_deliveries WHERE org_id = $1 AND NOT (id = ANY($2::uuid[]))",
                org.org_id,
                [c.id for c in mine],
            )
            assert len(rows) == 2 * EVENTS - (2 * CAP - 1)
            assert all(row["free"] and row["due"] for row in rows)
        finally:
            await pool.close()

    async def test_a_capped_hosts_backlog_leaves_the_oldest_of_the_others_first(
        self, org: Tenant, hooks_engine: AsyncEngine, dsn: str
    ) -> None:
        # Three hosts; the first at its cap in this runner. A claim smaller than the others'
        # room takes their oldest due deliveries, across hosts, and none of the capped host's.
        capped = await create_endpoint(org, "http://127.0.0.1:11/hook")
        await create_endpoint(org, "http://127.0.0.1:12/hook")
        await create_endpoint(org, "http://127.0.0.1:13/hook")
        await send_events(org, hooks_engine, EVENTS)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            await deliveries.fan_out(pool, 500)
            # Distinct due times, the hosts' interleaved: 12's oldest, 13's, then 12's next.
            await pool.execute(
                "UPDATE webhook_deliveries d SET next_attempt_at = now() - make_interval("
                "secs => 10 * ranked.n + CASE WHEN d.host = '127.0.0.1:12' THEN 5 ELSE 0 END) "
                "FROM (SELECT id, row_number() OVER (PARTITION BY host ORDER BY id DESC) AS n "
                "      FROM webhook_deliveries WHERE org_id = $1) ranked "
                "WHERE d.id = ranked.id",
                org.org_id,
            )
            expected = await pool.fetch(
                "SELECT id FROM webhook_deliveries WHERE org_id = $1 AND host <> '127.0.0.1:11' "
                "ORDER BY next_attempt_at LIMIT 3",
                org.org_id,
            )
            claimed = await deliveries.claim(
                pool,
                limit=3,
                busy_hosts=["127.0.0.1:11"],
                lease_seconds=15,
                max_per_host=EVENTS,
                in_flight={"127.0.0.1:11": EVENTS},
            )
            mine = [c for c in claimed if c.org_id == org.org_id]
            assert {c.id for c in mine} == {row["id"] for row in expected}
            assert not any(str(c.endpoint_id) == capped["id"] for c in mine)
            assert sorted(c.host for c in mine) == ["127.0.0.1:12", "127.0.0.1:12", "127.0.0.1:13"]
            # With the host busy, the next due time is the others', now: not the capped host's.
            assert await deliveries.next_due(pool, ["127.0.0.1:11"]) == 0.0
        finally:
            await pool.close()
