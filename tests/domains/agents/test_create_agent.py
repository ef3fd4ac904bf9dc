"""POST /v1/agents: defaults, echo, and numbers attached in one transaction."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.factories import (
    BUILTIN_TOOL,
    HTTP_TOOL,
    agent_body,
    buy_number,
    create_agent,
    error,
    get_number,
    http_tool,
    number_in_use,
    random_id,
    release_number,
    snapshot,
    with_agents,
)
from tests.fixtures.tenants import Tenant

FULL: dict[str, Any] = {
    "name": "Appointment reminders",
    "type": "outbound",
    "persona": "You are Sam, a friendly scheduler.\n\tKeep it short.",
    "instructions": "Confirm tomorrow's appointment, then hang up.",
    "voice": "alloy",
    "language": "es-419",
    # Deliberately not in alphabetical order: the caller's key order must survive.
    "returns": {"reschedule_to": "string", "confirmed": "boolean", "party_size": "number"},
    "tools": [HTTP_TOOL, BUILTIN_TOOL],
    "webhook_url": "https://hooks.example.com/callingbox?source=test",
    "voicemail_action": "leave_message",
}


class TestCreateAgent:
    async def test_minimal_body_gets_defaults(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/agents", json={"name": "Front desk", "type": "inbound"})

        assert r.status_code == 201
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        body = r.json()
        assert body == agent_body(tenant)
        assert body["updated_at"] == body["created_at"]

    async def test_full_body_is_echoed(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/agents", json=FULL)

        assert r.status_code == 201
        body = r.json()
        assert body == agent_body(tenant, **FULL)
        assert list(body["returns"]) == ["reschedule_to", "confirmed", "party_size"]

    async def test_full_body_reads_back_the_same(self, tenant: Tenant) -> None:
        created = await create_agent(tenant, **FULL)

        r = await tenant.client.get(f"/v1/agents/{created['id']}")

        assert r.status_code == 200
        assert r.json() == created
        assert list(r.json()["returns"]) == ["reschedule_to", "confirmed", "party_size"]

    async def test_user_id_is_the_creating_key(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)

        assert agent["user_id"] == str(tenant.key_id)
        assert agent["org_id"] == str(tenant.org_id)

    @pytest.mark.parametrize("language", ["en", "en-US", "es", "es-419", "zh-Hant-TW"])
    async def test_accepts_bcp47_languages(self, tenant: Tenant, language: str) -> None:
        agent = await create_agent(tenant, language=language)

        assert agent == agent_body(tenant, language=language)

    async def test_accepts_http_webhook_url(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant, webhook_url="http://localhost:8080/hook")

        assert agent == agent_body(tenant, webhook_url="http://localhost:8080/hook")

    async def test_accepts_limits(self, tenant: Tenant) -> None:
        fields: dict[str, Any] = {
            "name": "n" * 200,
            "persona": "p" * 32_000,
            "instructions": "i" * 32_000,
            "voice": "v" * 100,
            "tools": [http_tool(name=f"tool_{i}") for i in range(16)],
        }

        agent = await create_agent(tenant, **fields)

        assert agent == agent_body(tenant, **fields)


class TestCreateAgentWithNumbers:
    async def test_numbers_attach_in_order_and_first_is_primary(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        third = await buy_number(tenant, 3)
        order = [third["id"], first["id"], second["id"]]

        r = await tenant.client.post(
            "/v1/agents", json={"name": "Front desk", "type": "inbound", "number_ids": order}
        )

        assert r.status_code == 201
        agent_id = r.json()["id"]
        assert r.json() == agent_body(
            tenant,
            primary_number_id=third["id"],
            numbers=[with_agents(n, inbound=agent_id) for n in (third, first, second)],
        )
        assert await get_number(tenant, first["id"]) == with_agents(first, inbound=agent_id)

    async def test_explicit_primary_number(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)

        r = await tenant.client.post(
            "/v1/agents",
            json={
                "name": "Dialer",
                "type": "outbound",
                "number_ids": [first["id"], second["id"]],
                "primary_number_id": second["id"],
            },
        )

        assert r.status_code == 201
        agent_id = r.json()["id"]
        assert r.json() == agent_body(
            tenant,
            name="Dialer",
            type="outbound",
            primary_number_id=second["id"],
            numbers=[with_agents(n, outbound=[agent_id]) for n in (first, second)],
        )

    async def test_empty_number_ids(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant, number_ids=[])

        assert agent == agent_body(tenant)

    async def test_inbound_number_already_answering_conflicts(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        holder = await create_agent(tenant, "Reception", number_ids=[number["id"]])
        before = await snapshot(tenant)

        r = await tenant.client.post(
            "/v1/agents", json={"name": "Second", "type": "inbound", "number_ids": [number["id"]]}
        )

        assert r.status_code == 409
        assert r.json() == number_in_use(r, number["id"], holder["id"])
        assert await snapshot(tenant) == before

    async def test_conflict_after_an_attached_number_rolls_everything_back(
        self, tenant: Tenant
    ) -> None:
        free = await buy_number(tenant, 1)
        taken = await buy_number(tenant, 2)
        holder = await create_agent(tenant, "Reception", number_ids=[taken["id"]])
        before = await snapshot(tenant)

        r = await tenant.client.post(
            "/v1/agents",
            json={"name": "Second", "type": "inbound", "number_ids": [free["id"], taken["id"]]},
        )

        assert r.status_code == 409
        assert r.json() == number_in_use(r, taken["id"], holder["id"])
        assert await snapshot(tenant) == before
        assert await get_number(tenant, free["id"]) == with_agents(free)

    async def test_outbound_agents_share_a_number_with_an_inbound_agent(
        self, tenant: Tenant
    ) -> None:
        number = await buy_number(tenant)
        inbound = await create_agent(tenant, "Reception", number_ids=[number["id"]])

        first = await create_agent(tenant, "Dialer 1", "outbound", number_ids=[number["id"]])
        second = await create_agent(tenant, "Dialer 2", "outbound", number_ids=[number["id"]])

        assert first == agent_body(
            tenant,
            name="Dialer 1",
            type="outbound",
            primary_number_id=number["id"],
            numbers=[with_agents(number, inbound=inbound["id"], outbound=[first["id"]])],
        )
        assert second["numbers"] == [
            with_agents(number, inbound=inbound["id"], outbound=[first["id"], second["id"]])
        ]
        assert await get_number(tenant, number["id"]) == with_agents(
            number, inbound=inbound["id"], outbound=[first["id"], second["id"]]
        )

    async def test_inbound_agent_may_take_a_number_outbound_agents_use(
        self, tenant: Tenant
    ) -> None:
        number = await buy_number(tenant)
        outbound = await create_agent(tenant, "Dialer", "outbound", number_ids=[number["id"]])

        inbound = await create_agent(tenant, "Reception", number_ids=[number["id"]])

        assert inbound["numbers"] == [
            with_agents(number, inbound=inbound["id"], outbound=[outbound["id"]])
        ]

    async def test_number_of_another_org_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        own = await buy_number(tenant, 1)
        foreign = await buy_number(other_tenant, 2)
        before = await snapshot(tenant)
        foreign_before = await snapshot(other_tenant)

        r = await tenant.client.post(
            "/v1/agents",
            json={"name": "A", "type": "inbound", "number_ids": [own["id"], foreign["id"]]},
        )

        assert r.status_code == 404
        assert r.json() == error(r, f"number {foreign['id']} not found", "not_found")
        assert await snapshot(tenant) == before
        assert await snapshot(other_tenant) == foreign_before

    async def test_released_number_is_not_found(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        await release_number(tenant, number["id"])
        before = await snapshot(tenant)

        r = await tenant.client.post(
            "/v1/agents", json={"name": "A", "type": "outbound", "number_ids": [number["id"]]}
        )

        assert r.status_code == 404
        assert r.json() == error(r, f"number {number['id']} not found", "not_found")
        assert await snapshot(tenant) == before

    async def test_unknown_number_is_not_found(self, tenant: Tenant) -> None:
        missing = random_id()

        r = await tenant.client.post(
            "/v1/agents", json={"name": "A", "type": "inbound", "number_ids": [missing]}
        )

        assert r.status_code == 404
        assert r.json() == error(r, f"number {missing} not found", "not_found")
        assert await snapshot(tenant) == {
            "agents": {"data": [], "has_more": False},
            "active": {"data": [], "has_more": False},
            "released": {"data": [], "has_more": False},
        }

    async def test_duplicate_number_ids(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        before = await snapshot(tenant)

        r = await tenant.client.post(
            "/v1/agents",
            json={"name": "A", "type": "inbound", "number_ids": [number["id"], number["id"]]},
        )

        assert r.status_code == 400
        assert r.json() == error(r, "invalid field number_ids: must not contain duplicates")
        assert await snapshot(tenant) == before

    async def test_primary_not_among_number_ids(self, tenant: Tenant) -> None:
        attached = await buy_number(tenant, 1)
        other = await buy_number(tenant, 2)
        before = await snapshot(tenant)

        r = await tenant.client.post(
            "/v1/agents",
            json={
                "name": "A",
                "type": "inbound",
                "number_ids": [attached["id"]],
                "primary_number_id": other["id"],
            },
        )

        assert r.status_code == 400
        assert r.json() == error(r, "primary_number_id must be one of number_ids")
        assert await snapshot(tenant) == before

    async def test_primary_without_number_ids(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        before = await snapshot(tenant)

        r = await tenant.client.post(
            "/v1/agents",
            json={"name": "A", "type": "inbound", "primary_number_id": number["id"]},
        )

        assert r.status_code == 400
        assert r.json() == error(r, "primary_number_id must be one of number_ids")
        assert await snapshot(tenant) == before
