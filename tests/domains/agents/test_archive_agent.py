"""DELETE /v1/agents/{id}: archiving frees every number and freezes the agent."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.factories import (
    MISSING_AGENT_IDS,
    TIMESTAMP,
    agent_archived,
    agent_not_found,
    archive,
    attach,
    buy_number,
    create_agent,
    get_agent,
    get_number,
    with_agents,
)
from tests.fixtures.tenants import Tenant


class TestArchiveAgent:
    async def test_archives_and_detaches_every_number(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        before = await create_agent(tenant, number_ids=[first["id"], second["id"]])

        r = await tenant.client.delete(f"/v1/agents/{before['id']}")

        assert r.status_code == 200
        assert r.json() == {
            **before,
            "archived_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "primary_number_id": None,
            "numbers": [],
        }
        assert r.json()["archived_at"] >= before["updated_at"]
        assert r.json()["updated_at"] > before["updated_at"]
        assert await get_agent(tenant, before["id"]) == r.json()
        assert await get_number(tenant, first["id"]) == with_agents(first)
        assert await get_number(tenant, second["id"]) == with_agents(second)

    async def test_freed_number_can_answer_for_another_inbound_agent(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        old = await create_agent(tenant, "Old reception", number_ids=[number["id"]])
        await archive(tenant, old["id"])

        new = await create_agent(tenant, "New reception")
        attached = await attach(tenant, new["id"], number["id"])

        assert attached["numbers"] == [with_agents(number, inbound=new["id"])]
        assert attached["primary_number_id"] == number["id"]
        assert await get_number(tenant, number["id"]) == with_agents(number, inbound=new["id"])

    async def test_freed_number_can_be_given_at_create(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        old = await create_agent(tenant, "Old reception", number_ids=[number["id"]])
        await archive(tenant, old["id"])

        new = await create_agent(tenant, "New reception", number_ids=[number["id"]])

        assert new["numbers"] == [with_agents(number, inbound=new["id"])]

    async def test_outbound_agent_leaves_the_numbers_caller_ids(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        inbound = await create_agent(tenant, "Reception", number_ids=[number["id"]])
        first = await create_agent(tenant, "Dialer 1", "outbound", number_ids=[number["id"]])
        second = await create_agent(tenant, "Dialer 2", "outbound", number_ids=[number["id"]])

        archived = await archive(tenant, first["id"])

        assert archived["numbers"] == []
        assert archived["primary_number_id"] is None
        assert await get_number(tenant, number["id"]) == with_agents(
            number, inbound=inbound["id"], outbound=[second["id"]]
        )
        assert (await get_agent(tenant, second["id"]))["numbers"] == [
            with_agents(number, inbound=inbound["id"], outbound=[second["id"]])
        ]

    async def test_archiving_again_returns_it_unchanged(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        first = await archive(tenant, agent["id"])

        r = await tenant.client.delete(f"/v1/agents/{agent['id']}")

        assert r.status_code == 200
        assert r.json() == first
        assert await get_agent(tenant, agent["id"]) == first

    async def test_archived_agent_leaves_the_default_list(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        archived = await archive(tenant, agent["id"])

        default = await tenant.client.get("/v1/agents")
        everything = await tenant.client.get("/v1/agents", params={"include_archived": "true"})

        assert default.json() == {"data": [], "has_more": False}
        assert everything.json() == {"data": [archived], "has_more": False}

    async def test_update_afterwards_conflicts(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        archived = await archive(tenant, agent["id"])

        r = await tenant.client.patch(f"/v1/agents/{agent['id']}", json={"persona": "Back"})

        assert r.status_code == 409
        assert r.json() == agent_archived(r, agent["id"])
        assert await get_agent(tenant, agent["id"]) == archived

    @pytest.mark.parametrize("set_as_primary", [False, True])
    async def test_attach_afterwards_conflicts(self, tenant: Tenant, set_as_primary: bool) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        archived = await archive(tenant, agent["id"])

        r = await tenant.client.post(
            f"/v1/agents/{agent['id']}/numbers",
            json={"number_id": number["id"], "set_as_primary": set_as_primary},
        )

        assert r.status_code == 409
        assert r.json() == agent_archived(r, agent["id"])
        assert await get_agent(tenant, agent["id"]) == archived
        assert await get_number(tenant, number["id"]) == with_agents(number)

    async def test_attach_of_an_unknown_number_afterwards_conflicts_too(
        self, tenant: Tenant
    ) -> None:
        """Same order of checks as every other change: the agent (archived) before the number."""
        agent = await create_agent(tenant)
        archived = await archive(tenant, agent["id"])

        r = await tenant.client.post(
            f"/v1/agents/{agent['id']}/numbers", json={"number_id": str(uuid.uuid4())}
        )

        assert r.status_code == 409
        assert r.json() == agent_archived(r, agent["id"])
        assert await get_agent(tenant, agent["id"]) == archived

    async def test_detach_afterwards_conflicts(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        archived = await archive(tenant, agent["id"])

        r = await tenant.client.delete(f"/v1/agents/{agent['id']}/numbers/{number['id']}")

        assert r.status_code == 409
        assert r.json() == agent_archived(r, agent["id"])
        assert await get_agent(tenant, agent["id"]) == archived

    async def test_set_primary_afterwards_conflicts(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        archived = await archive(tenant, agent["id"])

        r = await tenant.client.put(
            f"/v1/agents/{agent['id']}/primary-number", json={"number_id": number["id"]}
        )

        assert r.status_code == 409
        assert r.json() == agent_archived(r, agent["id"])
        assert await get_agent(tenant, agent["id"]) == archived

    async def test_other_orgs_agent(self, tenant: Tenant, other_tenant: Tenant) -> None:
        number = await buy_number(other_tenant)
        foreign = await create_agent(other_tenant, number_ids=[number["id"]])

        r = await tenant.client.delete(f"/v1/agents/{foreign['id']}")

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])
        assert await get_agent(other_tenant, foreign["id"]) == foreign

    @pytest.mark.parametrize("agent_id", MISSING_AGENT_IDS)
    async def test_missing_agent(self, tenant: Tenant, agent_id: str) -> None:
        r = await tenant.client.delete(f"/v1/agents/{agent_id}")

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, agent_id)
