"""DELETE /v1/agents/{id}/numbers/{number_id}: freeing lines and promoting a new primary."""

from __future__ import annotations

import pytest

from tests.fixtures.factories import (
    MISSING_AGENT_IDS,
    TIMESTAMP,
    agent_not_found,
    attach,
    buy_number,
    create_agent,
    delete_attachment,
    error,
    get_agent,
    get_number,
    post_attach,
    random_id,
    with_agents,
)
from tests.fixtures.tenants import Tenant


class TestDetachNumber:
    async def test_detach_non_primary(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"], second["id"]])

        r = await delete_attachment(tenant, agent["id"], second["id"])

        assert r.status_code == 200
        assert r.json() == {
            **agent,
            "updated_at": TIMESTAMP,
            "numbers": [with_agents(first, inbound=agent["id"])],
        }
        assert r.json()["updated_at"] > agent["updated_at"]
        assert await get_number(tenant, second["id"]) == with_agents(second)
        assert await get_agent(tenant, agent["id"]) == r.json()

    async def test_detaching_primary_promotes_earliest_attached(self, tenant: Tenant) -> None:
        numbers = [await buy_number(tenant, line) for line in (1, 2, 3)]
        agent = await create_agent(tenant, "Dialer", "outbound")
        # Attached 2, 3, 1: earliest-attached differs from earliest-bought and latest-attached.
        for number in (numbers[1], numbers[2], numbers[0]):
            await attach(tenant, agent["id"], number["id"])

        r = await delete_attachment(tenant, agent["id"], numbers[1]["id"])

        assert r.status_code == 200
        assert r.json()["primary_number_id"] == numbers[2]["id"]
        assert r.json()["numbers"] == [
            with_agents(numbers[2], outbound=[agent["id"]]),
            with_agents(numbers[0], outbound=[agent["id"]]),
        ]

    async def test_detaching_a_switched_primary_promotes_earliest_attached(
        self, tenant: Tenant
    ) -> None:
        numbers = [await buy_number(tenant, line) for line in (1, 2, 3)]
        agent = await create_agent(
            tenant, number_ids=[numbers[2]["id"], numbers[0]["id"], numbers[1]["id"]]
        )
        await attach(tenant, agent["id"], numbers[1]["id"], set_as_primary=True)

        r = await delete_attachment(tenant, agent["id"], numbers[1]["id"])

        assert r.status_code == 200
        assert r.json()["primary_number_id"] == numbers[2]["id"]
        assert [n["id"] for n in r.json()["numbers"]] == [numbers[2]["id"], numbers[0]["id"]]

    async def test_detaching_the_last_number_clears_primary(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])

        r = await delete_attachment(tenant, agent["id"], number["id"])

        assert r.status_code == 200
        assert r.json() == {
            **agent,
            "primary_number_id": None,
            "updated_at": TIMESTAMP,
            "numbers": [],
        }
        assert await get_number(tenant, number["id"]) == with_agents(number)

    async def test_detached_inbound_line_is_free_for_another_agent(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        old = await create_agent(tenant, "Old", number_ids=[number["id"]])
        await delete_attachment(tenant, old["id"], number["id"])
        new = await create_agent(tenant, "New")

        r = await post_attach(tenant, new["id"], {"number_id": number["id"]})

        assert r.status_code == 200
        assert r.json()["numbers"] == [with_agents(number, inbound=new["id"])]

    async def test_detach_outbound_keeps_the_others(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        inbound = await create_agent(tenant, "Reception", number_ids=[number["id"]])
        first = await create_agent(tenant, "Dialer 1", "outbound", number_ids=[number["id"]])
        second = await create_agent(tenant, "Dialer 2", "outbound", number_ids=[number["id"]])

        r = await delete_attachment(tenant, first["id"], number["id"])

        assert r.status_code == 200
        assert r.json()["numbers"] == []
        assert r.json()["primary_number_id"] is None
        assert await get_number(tenant, number["id"]) == with_agents(
            number, inbound=inbound["id"], outbound=[second["id"]]
        )

    async def test_number_not_attached(self, tenant: Tenant) -> None:
        attached = await buy_number(tenant, 1)
        other = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[attached["id"]])
        await create_agent(tenant, "Holder", number_ids=[other["id"]])

        r = await delete_attachment(tenant, agent["id"], other["id"])

        assert r.status_code == 404
        assert r.json() == error(
            r, f"number {other['id']} is not attached to agent {agent['id']}", "not_found"
        )
        assert await get_agent(tenant, agent["id"]) == agent

    async def test_detaching_twice(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        first = await delete_attachment(tenant, agent["id"], number["id"])

        r = await delete_attachment(tenant, agent["id"], number["id"])

        assert r.status_code == 404
        assert r.json() == error(
            r, f"number {number['id']} is not attached to agent {agent['id']}", "not_found"
        )
        assert await get_agent(tenant, agent["id"]) == first.json()

    async def test_unknown_number(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        missing = random_id()

        r = await delete_attachment(tenant, agent["id"], missing)

        assert r.status_code == 404
        assert r.json() == error(
            r, f"number {missing} is not attached to agent {agent['id']}", "not_found"
        )

    async def test_number_id_that_is_not_a_uuid(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)

        r = await delete_attachment(tenant, agent["id"], "abc")

        assert r.status_code == 404
        assert r.json() == error(r, "number abc not found", "not_found")

    async def test_other_orgs_agent(self, tenant: Tenant, other_tenant: Tenant) -> None:
        number = await buy_number(other_tenant)
        foreign = await create_agent(other_tenant, number_ids=[number["id"]])

        r = await delete_attachment(tenant, foreign["id"], number["id"])

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])
        assert await get_agent(other_tenant, foreign["id"]) == foreign

    @pytest.mark.parametrize("agent_id", MISSING_AGENT_IDS)
    async def test_missing_agent(self, tenant: Tenant, agent_id: str) -> None:
        number = await buy_number(tenant)

        r = await delete_attachment(tenant, agent_id, number["id"])

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, agent_id)
