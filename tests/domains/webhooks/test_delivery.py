"""Delivery end to end: committed events, the runner on the real due-work loop, real receivers
on 127.0.0.1; every call event of every sandbox outcome to each matching destination."""

from __future__ import annotations

import uuid

import pytest
from callingbox.resources.webhooks import Webhooks
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.domains.webhooks.tasks import WebhookWork
from tests.domains.webhooks.calls import OUTCOMES, call
from tests.domains.webhooks.conftest import create_endpoint, org_secret, record_event
from tests.domains.webhooks.receivers import Received, receiving, types_of, verify_signature
from tests.fixtures.tenants import Tenant


def check_delivery(received: Received, secret: str, call_id: uuid.UUID) -> None:
    """Headers, envelope and signature (the official client's check and our own)."""
    headers = {name.lower(): value for name, value in received.headers.items()}
    envelope = received.json()
    assert headers["content-type"] == "application/json"
    assert headers["callingbox-event-id"] == envelope["id"]
    assert headers["callingbox-event-type"] == envelope["type"]
    assert headers["x-callingbox-event"] == envelope["type"]
    assert headers["x-callingbox-call-id"] == str(call_id)
    assert list(envelope) == ["id", "type", "created", "api_version", "data"]
    assert envelope["api_version"] == "2026-04"
    assert isinstance(envelope["created"], int)
    assert envelope["data"]["call"]["id"] == str(call_id)
    event = Webhooks.construct_event(received.body, headers["callingbox-signature"], secret)
    assert (event.id, event.type, event.data) == (
        envelope["id"],
        envelope["type"],
        envelope["data"],
    )
    verify_signature(secret, headers["callingbox-signature"], received.body)


class TestCallEvents:
    @pytest.mark.parametrize("outcome", sorted(OUTCOMES))
    async def test_every_event_reaches_every_matching_destination(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork, outcome: str
    ) -> None:
        sequence = OUTCOMES[outcome]
        with (
            receiving() as inline,
            receiving() as every,
            receiving() as terminal,
            receiving() as unrelated,
        ):
            everything = await create_endpoint(org, every.url)
            named = await create_endpoint(
                org, terminal.url, enabled_events=[sequence[-1], "agent.created"]
            )
            await create_endpoint(org, unrelated.url, enabled_events=["number.purchased"])
            call_id = uuid.uuid4()
            for type_ in sequence:
                data = {"call": call(org.org_id, call_id, type_, inline.url)}
                await record_event(hooks_engine, org.org_id, type_, data, call_id)

            got_inline = await inline.wait_for(len(sequence))
            got_every = await every.wait_for(len(sequence))
            got_terminal = await terminal.wait_for(1)

            assert sorted(types_of(got_inline)) == sorted(sequence)
            assert sorted(types_of(got_every)) == sorted(sequence)
            assert types_of(got_terminal) == [sequence[-1]]
            secret = await org_secret(hooks_engine, org.org_id)
            for received in got_inline:
                check_delivery(received, secret, call_id)
            for received in got_every:
                check_delivery(received, everything["signing_secret"], call_id)
            check_delivery(got_terminal[0], named["signing_secret"], call_id)
            # Nothing more arrives: one delivery per (event, destination).
            assert await inline.quiet_for(0.3) == len(sequence)
            assert len(every.received) == len(sequence)
            assert len(terminal.received) == 1
            assert unrelated.received == []

    async def test_one_delivery_per_event_and_destination(
        self, org: Tenant, hooks_engine: AsyncEngine, runner: WebhookWork
    ) -> None:
        with receiving() as inline, receiving() as first, receiving() as second:
            for receiver in (first, second, second):
                await create_endpoint(org, receiver.url)
            call_id = uuid.uuid4()
            data = {"call": call(org.org_id, call_id, "call.completed", inline.url)}
            await record_event(hooks_engine, org.org_id, "call.completed", data, call_id)

            await first.wait_for(1)
            await second.wait_for(2)
            await inline.wait_for(1)
            r = await org.client.get("/v1/webhook_deliveries", params={"call_id": str(call_id)})

            deliveries = r.json()["data"]
            assert len(deliveries) == 4
            assert len({d["id"] for d in deliveries}) == 4
            assert sum(d["endpoint_id"] is None for d in deliveries) == 1
            ids = {r.json()["id"] for r in [*first.received, *second.received, *inline.received]}
            assert ids == {d["id"] for d in deliveries}
