"""Calls and webhooks together, as a user meets them: a real ``serve`` plays calls out and its
runner delivers their events to the call's own ``webhook_url`` and to an endpoint, on real
receivers on 127.0.0.1; the call's ``webhook_status`` follows its inline deliveries."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.domains.calls.live import COMPLETED_EVENTS, client, outbound_agent, wait_terminal
from tests.domains.webhooks.receivers import receiving, replies, types_of
from tests.domains.webhooks.test_delivery import check_delivery
from tests.fixtures import database
from tests.fixtures.database import asyncpg_dsn
from tests.fixtures.keys import create_key_at
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.system

WITHIN = 30.0  # seconds for every call to end and every delivery to settle (normally about one)
SETTINGS = {
    "CALLINGBOX_SANDBOX_RING_SECONDS": "0",
    "CALLINGBOX_SANDBOX_TALK_SECONDS": "0",
    "CALLINGBOX_WEBHOOK_ALLOW_PRIVATE": "true",
    # The eight attempts of the schedule (about 36 h) in well under a second.
    "CALLINGBOX_WEBHOOK_RETRY_SCALE": "0.000005",
}


@pytest.fixture
def own_database() -> Iterator[str]:
    """No other server's runner may deliver these events (the session's live server would)."""
    with database.new_database(database.server_url(), "callingbox_call_hooks") as url:
        yield url


async def org_secret(database_url: str) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        secret: str = await connection.fetchval("SELECT secret FROM org_signing_secrets")
    finally:
        await connection.close()
    return secret


async def settled(http: httpx.AsyncClient, call_id: str, status: str) -> dict[str, Any]:
    """The call once its ``webhook_status`` is ``status`` (bounded)."""
    deadline = time.monotonic() + WITHIN
    while True:
        call: dict[str, Any] = (await http.get(f"/v1/calls/{call_id}")).json()
        if call["webhook_status"] == status or time.monotonic() > deadline:
            return call
        await asyncio.sleep(0.05)


class TestCallWebhooks:
    async def test_every_event_reaches_the_call_url_and_the_endpoint(
        self, own_database: str
    ) -> None:
        key = await create_key_at(own_database)
        with (
            running_server(own_database, settings=SETTINGS) as base_url,
            receiving() as inline,
            receiving() as endpoint,
        ):
            async with client(base_url, key) as http:
                agent = await outbound_agent(http)
                r = await http.post("/v1/webhook_endpoints", json={"url": endpoint.url})
                assert r.status_code == 201, r.text
                endpoint_secret = r.json()["signing_secret"]
                r = await http.post(
                    "/v1/calls",
                    json={"agent_id": agent["id"], "to": "+14155550123", "webhook_url": inline.url},
                )
                assert r.status_code == 201, r.text
                call_id = r.json()["id"]
                assert r.json()["webhook_status"] == "pending"
                await wait_terminal(http, [call_id], WITHIN)
                call = await settled(http, call_id, "delivered")
                await endpoint.wait_for(len(COMPLETED_EVENTS), WITHIN)
        assert call["status"] == "completed"
        assert (call["webhook_status"], call["webhook_error"]) == ("delivered", None)
        assert sorted(types_of(inline.received)) == sorted(COMPLETED_EVENTS)
        assert sorted(types_of(endpoint.received)) == sorted(COMPLETED_EVENTS)
        secret = await org_secret(own_database)
        for delivery in inline.received:
            check_delivery(delivery, secret, uuid.UUID(call_id))
        for delivery in endpoint.received:
            check_delivery(delivery, endpoint_secret, uuid.UUID(call_id))
        # The terminal event carries the call as it ended: transcript done, result extracted.
        (completed,) = [d.json() for d in inline.received if d.json()["type"] == "call.completed"]
        assert completed["data"]["call"]["status"] == "completed"
        assert completed["data"]["call"]["ended_at"] == call["ended_at"]

    async def test_an_exhausted_inline_delivery_fails_the_call_webhook(
        self, own_database: str
    ) -> None:
        key = await create_key_at(own_database)
        with (
            running_server(own_database, settings=SETTINGS) as base_url,
            receiving(replies(500)) as inline,
        ):
            async with client(base_url, key) as http:
                agent = await outbound_agent(http)
                r = await http.post(
                    "/v1/calls",
                    # 0002: busy, so three events, each attempted eight times.
                    json={"agent_id": agent["id"], "to": "+14155550002", "webhook_url": inline.url},
                )
                assert r.status_code == 201, r.text
                call_id = r.json()["id"]
                await wait_terminal(http, [call_id], WITHIN)
                call = await settled(http, call_id, "failed")
                r = await http.get("/v1/webhook_deliveries", params={"call_id": call_id})
                deliveries = r.json()["data"]
        assert call["status"] == "busy"
        assert call["webhook_status"] == "failed"
        assert call["webhook_error"]
        assert "500" in call["webhook_error"]
        assert {d["event_type"] for d in deliveries} == {"call.queued", "call.ringing", "call.busy"}
        assert any(d["status"] == "exhausted" and d["attempt_count"] == 8 for d in deliveries)
        assert all(d["endpoint_id"] is None for d in deliveries)
