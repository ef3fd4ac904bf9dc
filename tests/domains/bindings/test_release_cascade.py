"""Releasing a number detaches it from every agent: the cascade into the bindings."""

from __future__ import annotations

from tests.fixtures.factories import attach, buy_number, create_agent, get_agent, get_number
from tests.fixtures.tenants import Tenant


class TestReleaseCascade:
    async def test_detaches_from_every_agent_and_promotes_primaries(self, tenant: Tenant) -> None:
        released = await buy_number(tenant, 0)
        second = await buy_number(tenant, 1)
        third = await buy_number(tenant, 2)
        # Primary is the released number; the earliest-attached remaining one takes over.
        inbound = await create_agent(
            tenant, type="inbound", number_ids=[released["id"], third["id"], second["id"]]
        )
        # Primary is the released number and it is the only one: primary becomes null.
        lonely = await create_agent(tenant, type="outbound", number_ids=[released["id"]])
        # Primary is another number: it stays.
        keeps = await create_agent(
            tenant,
            type="outbound",
            number_ids=[third["id"], released["id"]],
            primary_number_id=third["id"],
        )
        # Attached later than created: attach order, not purchase order, picks the heir.
        late = await create_agent(tenant, type="outbound", number_ids=[released["id"]])
        await attach(tenant, late["id"], third["id"])
        await attach(tenant, late["id"], second["id"])
        assert [a["primary_number_id"] for a in (inbound, lonely, keeps)] == [
            released["id"],
            released["id"],
            third["id"],
        ]

        r = await tenant.client.delete(f"/v1/numbers/{released['id']}")
        assert r.status_code == 200, r.text
        assert r.json() == {**released, "status": "released"}

        third_now = {
            **third,
            "inbound_agent_id": inbound["id"],
            "outbound_agent_ids": [keeps["id"], late["id"]],
        }
        second_now = {
            **second,
            "inbound_agent_id": inbound["id"],
            "outbound_agent_ids": [late["id"]],
        }
        assert await get_number(tenant, third["id"]) == third_now
        assert await get_number(tenant, second["id"]) == second_now

        expected = {
            inbound["id"]: (third["id"], [third_now, second_now]),
            lonely["id"]: (None, []),
            keeps["id"]: (third["id"], [third_now]),
            late["id"]: (third["id"], [third_now, second_now]),
        }
        for agent_id, (primary, numbers) in expected.items():
            agent = await get_agent(tenant, agent_id)
            assert agent["primary_number_id"] == primary, agent_id
            assert agent["numbers"] == numbers, agent_id

    async def test_agents_show_the_number_detached_in_full(self, tenant: Tenant) -> None:
        number = await buy_number(tenant, 0)
        other = await buy_number(tenant, 1)
        agent = await create_agent(tenant, type="inbound", number_ids=[number["id"], other["id"]])
        r = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert r.status_code == 200, r.text
        after = await get_agent(tenant, agent["id"])
        assert after["updated_at"] > agent["updated_at"]
        assert after == {
            **agent,
            "primary_number_id": other["id"],
            "updated_at": after["updated_at"],
            "numbers": [{**other, "inbound_agent_id": agent["id"]}],
        }
