"""Configuration events (agent.*, number.*) go only to endpoints that name them; the inline
outcome hook; deliveries are per org."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.domains.webhooks.tasks import WebhookWork
from tests.domains.webhooks.calls import call
from tests.domains.webhooks.conftest import (
    create_endpoint,
    record_event,
    running,
    wait_until,
    webhook_work,
)
from tests.domains.webhooks.receivers import receiving, replies, types_of
from tests.fixtures.factories import attach, buy_number, create_agent
from tests.fixtures.tenants import Tenant

NAMED = ["agent.created", "agent.number_attached", "number.purchased", "agent.updated"]


class TestConfigurationEvents:
    async def test_only_endpoints_that_name_them_receive_them(
        self, org: Tenant, runner: WebhookWork
    ) -> None:
        with receiving() as named, receiving() as everything:
            subscribed = await create_endpoint(org, named.url, enabled_events=NAMED)
            await create_endpoint(org, everything.url)  # "*": call events only

            number = await buy_number(org)
            agent = await create_agent(org)
            attached = await attach(org, agent["id"], number["id"])
            got = await named.wait_for(3)

            by_type = {r.json()["type"]: r for r in got}
            assert sorted(by_type) == ["agent.created", "agent.number_attached", "number.purchased"]
            assert by_type["number.purchased"].json()["data"] == {"number": number}
            assert by_type["agent.created"].json()["data"] == {"agent": agent}
            number_now = (await org.client.get(f"/v1/numbers/{number['id']}")).json()
            assert by_type["agent.number_attached"].json()["data"] == {
                "agent": attached,
                "number": number_now,
            }
            assert "X-CallingBox-Call-Id" not in by_type["agent.created"].headers
            assert await everything.quiet_for(0.3) == 0
            r = await org.client.get(
                "/v1/webhook_deliveries", params={"endpoint_id": subscribed["id"]}
            )
            assert {d["call_id"] for d in r.json()["data"]} == {None}

    async def test_every_configuration_event_type(self, org: Tenant, runner: WebhookWork) -> None:
        with receiving() as receiver:
            await create_endpoint(
                org,
                receiver.url,
                enabled_events=[
                    "agent.created",
                    "agent.updated",
                    "agent.archived",
                    "agent.number_attached",
                    "agent.number_detached",
                    "number.purchased",
                    "number.released",
                ],
            )
            number = await buy_number(org)
            agent = await create_agent(org)
            await attach(org, agent["id"], number["id"])
            await org.client.patch(f"/v1/agents/{agent['id']}", json={"name": "Renamed"})
            await org.client.delete(f"/v1/agents/{agent['id']}/numbers/{number['id']}")
            await org.client.delete(f"/v1/agents/{agent['id']}")
            await org.client.delete(f"/v1/numbers/{number['id']}")

            got = await receiver.wait_for(7)
            assert sorted(types_of(got)) == sorted(
                [
                    "number.purchased",
                    "agent.created",
                    "agent.number_attached",
                    "agent.updated",
                    "agent.number_detached",
                    "agent.archived",
                    "number.released",
                ]
            )
            assert await receiver.quiet_for(0.3) == 7


class Outcomes:
    """Records what the runner reports for inline deliveries (the calls table's hook)."""

    def __init__(self) -> None:
        self.seen: list[tuple[uuid.UUID, str, str | None]] = []

    async def __call__(
        self, connection: Any, call_id: uuid.UUID, status: str, error: str | None
    ) -> None:
        assert await connection.fetchval("SELECT 1") == 1  # inside the recording transaction
        self.seen.append((call_id, status, error))


@pytest.fixture
async def hooked(dsn: str) -> AsyncIterator[Outcomes]:
    outcomes = Outcomes()
    async with running(dsn, webhook_work(retry_scale=0.00002, on_inline_outcome=outcomes)):
        yield outcomes


class TestInlineOutcome:
    async def test_delivered_then_failed_when_exhausted(
        self, org: Tenant, hooks_engine: AsyncEngine, hooked: Outcomes
    ) -> None:
        with receiving() as good, receiving(replies(500)) as bad:
            ok_call, bad_call = uuid.uuid4(), uuid.uuid4()
            for call_id, url in ((ok_call, good.url), (bad_call, bad.url)):
                data = {"call": call(org.org_id, call_id, "call.completed", url)}
                await record_event(hooks_engine, org.org_id, "call.completed", data, call_id)

            await wait_until(lambda: _async(len(hooked.seen) == 2), within=20)

            assert sorted(hooked.seen, key=lambda s: s[1]) == [
                (ok_call, "delivered", None),
                (bad_call, "failed", "receiver answered 500"),
            ]
            assert len(bad.received) == 8


async def _async(value: Any) -> Any:
    return value


class TestDeliveryTenancy:
    async def test_another_orgs_deliveries_are_not_found(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork, other_org: Tenant
    ) -> None:
        with receiving() as receiver:
            await create_endpoint(org, receiver.url)
            call_id = uuid.uuid4()
            data = {"call": call(org.org_id, call_id, "call.queued", None)}
            await record_event(hooks_engine, org.org_id, "call.queued", data, call_id)
            (received,) = await receiver.wait_for(1)
            delivery_id = received.json()["id"]

            mine = await org.client.get(f"/v1/webhook_deliveries/{delivery_id}")
            assert mine.status_code == 200
            for method, suffix in (("GET", ""), ("POST", "/redeliver"), ("GET", "/attempts")):
                r = await other_org.client.request(
                    method, f"/v1/webhook_deliveries/{delivery_id}{suffix}"
                )
                assert r.status_code == 404
                assert r.json()["error"] == f"webhook delivery {delivery_id} not found"
            listed = await other_org.client.get(
                "/v1/webhook_deliveries", params={"call_id": str(call_id)}
            )
            assert listed.json() == {"data": [], "has_more": False}
