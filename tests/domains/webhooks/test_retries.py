"""The retry schedule end to end, with a tiny retry scale: retries, exhaustion, auto-disable,
re-enabling, redeliver, rotation, deletion and Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from callingbox._exceptions import BadRequestError
from callingbox.resources.webhooks import Webhooks
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.domains.events.types import CallEventType
from callingbox_server.domains.webhooks.tasks import WebhookWork
from tests.domains.webhooks.calls import call
from tests.domains.webhooks.conftest import (
    create_endpoint,
    record_event,
    running,
    wait_until,
    webhook_work,
)
from tests.domains.webhooks.receivers import Reply, receiving, replies, verify_signature
from tests.fixtures.tenants import Tenant

# The whole eight-attempt schedule in about three seconds.
FAST = 0.00002


@pytest.fixture
async def fast_runner(dsn: str) -> AsyncIterator[WebhookWork]:
    work = webhook_work(retry_scale=FAST)
    async with running(dsn, work):
        yield work


async def send_event(
    org: Tenant, hooks_engine: AsyncEngine, type_: CallEventType = "call.completed"
) -> uuid.UUID:
    call_id = uuid.uuid4()
    data = {"call": call(org.org_id, call_id, type_, None)}
    await record_event(hooks_engine, org.org_id, type_, data, call_id)
    return call_id


async def attempts(org: Tenant, delivery_id: str) -> list[dict[str, Any]]:
    r = await org.client.get(f"/v1/webhook_deliveries/{delivery_id}/attempts")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["data"]
    return found


async def endpoint(org: Tenant, endpoint_id: str) -> dict[str, Any]:
    r = await org.client.get(f"/v1/webhook_endpoints/{endpoint_id}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def settled(org: Tenant, call_id: uuid.UUID, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await org.client.get("/v1/webhook_deliveries", params={"call_id": str(call_id)})
        found = r.json()["data"]
        return found[0] if found and found[0]["status"] == status else None

    found: dict[str, Any] = await wait_until(check)
    return found


class TestRetries:
    async def test_500_500_then_200_delivers_on_attempt_3(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork
    ) -> None:
        with receiving(replies(500, 500, 200)) as receiver:
            created = await create_endpoint(org, receiver.url)
            call_id = await send_event(org, hooks_engine)
            got = await receiver.wait_for(3)
            delivery = await settled(org, call_id, "delivered")

            assert {r.json()["id"] for r in got} == {delivery["id"]}
            assert {r.headers["CallingBox-Event-Id"] for r in got} == {delivery["id"]}
            assert len({r.body for r in got}) == 1  # the same envelope each time
            for received in got:
                header = received.headers["CallingBox-Signature"]
                verify_signature(created["signing_secret"], header, received.body)
                signed_at = int(header.split(",")[0].removeprefix("t="))
                assert abs(signed_at - received.at) <= 1  # signed when sent, not when enqueued
            assert delivery["attempt_count"] == 3
            assert delivery["last_response_status"] == 200
            assert delivery["last_error"] is None
            assert delivery["next_attempt_at"] is None
            assert delivery["delivered_at"] is not None
            log = await attempts(org, delivery["id"])
            assert [(a["attempt_number"], a["response_status"]) for a in log] == [
                (3, 200),
                (2, 500),
                (1, 500),
            ]
            assert {a["trigger"] for a in log} == {"automatic"}
            assert log[0]["response_body"] == '{"received":true}'
            assert await receiver.quiet_for(0.3) == 3

    async def test_eight_failures_exhaust(
        self, org: Tenant, hooks_engine: AsyncEngine, fast_runner: WebhookWork
    ) -> None:
        with receiving(replies(500)) as receiver:
            created = await create_endpoint(org, receiver.url)
            call_id = await send_event(org, hooks_engine)
            await receiver.wait_for(8)
            delivery = await settled(org, call_id, "exhausted")

            assert delivery["attempt_count"] == 8
            assert delivery["next_attempt_at"] is None
            assert delivery["last_error"] == "receiver answered 500"
            assert delivery["last_response_status"] == 500
            assert (await endpoint(org, created["id"]))["consecutive_failures"] == 1
            assert await receiver.quiet_for(0.5) == 8

    async def test_ten_exhausted_deliveries_disable_the_endpoint(
        self, org: Tenant, hooks_engine: AsyncEngine, fast_runner: WebhookWork
    ) -> None:
        with receiving(replies(500)) as receiver:
            created = await create_endpoint(org, receiver.url)
            for _ in range(10):
                await send_event(org, hooks_engine)
            await receiver.wait_for(80, within=30)

            async def disabled() -> dict[str, Any] | None:
                found = await endpoint(org, created["id"])
                return found if found["status"] == "disabled" else None

            found = await wait_until(disabled)
            assert found["disabled_reason"] == "too_many_failures"
            assert found["disabled_at"] is not None
            assert found["consecutive_failures"] == 10
            # Disabled: new events make it no deliveries.
            await send_event(org, hooks_engine)
            assert await receiver.quiet_for(0.5) == 80

            r = await org.client.patch(
                f"/v1/webhook_endpoints/{created['id']}", json={"status": "enabled"}
            )
            assert r.status_code == 200
            enabled = r.json()
            assert (enabled["status"], enabled["consecutive_failures"]) == ("enabled", 0)
            assert (enabled["disabled_reason"], enabled["disabled_at"]) == (None, None)

    async def test_a_success_resets_the_count(
        self, org: Tenant, hooks_engine: AsyncEngine, fast_runner: WebhookWork
    ) -> None:
        with receiving(replies(*[500] * 8, 200)) as receiver:
            created = await create_endpoint(org, receiver.url)
            first = await send_event(org, hooks_engine)
            await settled(org, first, "exhausted")
            assert (await endpoint(org, created["id"]))["consecutive_failures"] == 1

            second = await send_event(org, hooks_engine)
            await settled(org, second, "delivered")
            assert (await endpoint(org, created["id"]))["consecutive_failures"] == 0
            assert len(receiver.received) == 9

    async def test_retry_after_is_honoured(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork
    ) -> None:
        busy = Reply(503, headers={"Retry-After": "1"})
        with receiving(replies(busy, 200)) as receiver:
            await create_endpoint(org, receiver.url)
            call_id = await send_event(org, hooks_engine)
            first, second = await receiver.wait_for(2)
            delivery = await settled(org, call_id, "delivered")

            # The schedule alone would retry after about 30 ms at this scale.
            assert 1.0 <= second.at - first.at < 3.0
            assert delivery["attempt_count"] == 2


class TestRedeliver:
    async def test_sends_again_with_the_same_id(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork
    ) -> None:
        with receiving() as receiver:
            await create_endpoint(org, receiver.url)
            call_id = await send_event(org, hooks_engine)
            delivered = await settled(org, call_id, "delivered")

            r = await org.client.post(f"/v1/webhook_deliveries/{delivered['id']}/redeliver")

            assert r.status_code == 200
            assert r.json()["status"] == "pending"
            assert r.json()["manual_retry_count"] == 1
            first, second = await receiver.wait_for(2)
            assert first.body == second.body
            assert second.headers["CallingBox-Event-Id"] == delivered["id"]
            again = await settled(org, call_id, "delivered")
            assert (again["attempt_count"], again["manual_retry_count"]) == (2, 1)
            log = await attempts(org, delivered["id"])
            assert [(a["attempt_number"], a["trigger"]) for a in log] == [
                (2, "manual"),
                (1, "automatic"),
            ]


class TestRotateSecret:
    async def test_the_old_secret_stops_verifying_at_once(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork
    ) -> None:
        with receiving() as receiver:
            created = await create_endpoint(org, receiver.url)
            r = await org.client.post(f"/v1/webhook_endpoints/{created['id']}/rotate_secret")
            assert r.status_code == 200
            rotated = r.json()["signing_secret"]
            assert rotated != created["signing_secret"]

            await send_event(org, hooks_engine)
            (received,) = await receiver.wait_for(1)

            header = received.headers["CallingBox-Signature"]
            Webhooks.construct_event(received.body, header, rotated)
            with pytest.raises(BadRequestError):
                Webhooks.construct_event(received.body, header, created["signing_secret"])


class TestDeleteEndpoint:
    async def test_stops_its_pending_deliveries(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork
    ) -> None:
        with receiving(replies(500)) as receiver:
            created = await create_endpoint(org, receiver.url)
            call_id = await send_event(org, hooks_engine)
            await receiver.wait_for(1)

            r = await org.client.delete(f"/v1/webhook_endpoints/{created['id']}")

            assert r.status_code == 200
            delivery = await settled(org, call_id, "exhausted")
            assert delivery["last_error"] in ("webhook endpoint deleted", "receiver answered 500")
            assert delivery["next_attempt_at"] is None
            sent = len(receiver.received)
            assert await receiver.quiet_for(0.5) == sent
            assert delivery["attempt_count"] <= 3
