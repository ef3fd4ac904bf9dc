"""POST /v1/agents/{id}/numbers: binding rules, primary promotion, and rejections."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.factories import (
    MISSING_AGENT_IDS,
    TIMESTAMP,
    agent_body,
    agent_not_found,
    attach,
    buy_number,
    create_agent,
    delete_attachment,
    error,
    get_agent,
    get_number,
    number_in_use,
    post_attach,
    random_id,
    release_number,
    with_agents,
)
from tests.fixtures.tenants import Tenant


class TestAttachNumber:
    async def test_first_number_becomes_primary(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        before = await create_agent(tenant)

        r = await post_attach(tenant, before["id"], {"number_id": number["id"]})

        assert r.status_code == 200
        assert r.json() == agent_body(
            tenant,
            id=before["id"],
            created_at=before["created_at"],
            primary_number_id=number["id"],
            numbers=[with_agents(number, inbound=before["id"])],
        )
        assert r.json()["updated_at"] > before["updated_at"]
        assert await get_agent(tenant, before["id"]) == r.json()
        assert await get_number(tenant, number["id"]) == with_agents(number, inbound=before["id"])

    async def test_later_numbers_keep_the_primary(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, "Dialer", "outbound", number_ids=[first["id"]])

        r = await post_attach(
            tenant, agent["id"], {"number_id": second["id"], "set_as_primary": False}
        )

        assert r.status_code == 200
        assert r.json()["updated_at"] > agent["updated_at"]
        assert r.json()["primary_number_id"] == first["id"]
        assert r.json()["numbers"] == [
            with_agents(first, outbound=[agent["id"]]),
            with_agents(second, outbound=[agent["id"]]),
        ]

    async def test_set_as_primary_switches_primary(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"]])

        r = await post_attach(
            tenant, agent["id"], {"number_id": second["id"], "set_as_primary": True}
        )

        assert r.status_code == 200
        assert r.json() == {
            **agent,
            "primary_number_id": second["id"],
            "updated_at": TIMESTAMP,
            "numbers": [
                with_agents(first, inbound=agent["id"]),
                with_agents(second, inbound=agent["id"]),
            ],
        }

    async def test_agent_whose_primary_was_cleared_gets_a_new_one(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"]])
        cleared = await tenant.client.patch(
            f"/v1/agents/{agent['id']}", json={"primary_number_id": None}
        )
        assert cleared.status_code == 200

        r = await post_attach(tenant, agent["id"], {"number_id": second["id"]})

        assert r.status_code == 200
        assert r.json()["primary_number_id"] == second["id"]

    async def test_numbers_are_listed_in_attach_order(self, tenant: Tenant) -> None:
        numbers = [await buy_number(tenant, line) for line in (1, 2, 3)]
        agent = await create_agent(tenant, "Dialer", "outbound")

        for number in (numbers[1], numbers[2], numbers[0]):
            r = await post_attach(tenant, agent["id"], {"number_id": number["id"]})
            assert r.status_code == 200

        assert [n["id"] for n in r.json()["numbers"]] == [
            numbers[1]["id"],
            numbers[2]["id"],
            numbers[0]["id"],
        ]
        assert r.json()["primary_number_id"] == numbers[1]["id"]

    async def test_reattach_is_a_no_op(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"], second["id"]])

        r = await post_attach(tenant, agent["id"], {"number_id": second["id"]})

        assert r.status_code == 200
        assert r.json() == agent
        assert await get_agent(tenant, agent["id"]) == agent

    async def test_reattach_updates_primary_when_asked(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"], second["id"]])

        r = await post_attach(
            tenant, agent["id"], {"number_id": second["id"], "set_as_primary": True}
        )

        assert r.status_code == 200
        assert r.json() == {**agent, "primary_number_id": second["id"], "updated_at": TIMESTAMP}

    async def test_reattach_primary_as_primary(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])

        r = await post_attach(
            tenant, agent["id"], {"number_id": number["id"], "set_as_primary": True}
        )

        assert r.status_code == 200
        assert r.json() == agent

    async def test_second_inbound_agent_conflicts(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        holder = await create_agent(tenant, "Reception", number_ids=[number["id"]])
        second = await create_agent(tenant, "Overflow")

        r = await post_attach(
            tenant, second["id"], {"number_id": number["id"], "set_as_primary": True}
        )

        assert r.status_code == 409
        assert r.json() == number_in_use(r, number["id"], holder["id"])
        assert await get_agent(tenant, second["id"]) == second
        assert await get_agent(tenant, holder["id"]) == holder
        assert await get_number(tenant, number["id"]) == with_agents(number, inbound=holder["id"])

    async def test_conflict_names_the_current_holder(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        first = await create_agent(tenant, "First", number_ids=[number["id"]])
        r = await delete_attachment(tenant, first["id"], number["id"])
        assert r.status_code == 200
        current = await create_agent(tenant, "Current", number_ids=[number["id"]])
        third = await create_agent(tenant, "Third")

        r = await post_attach(tenant, third["id"], {"number_id": number["id"]})

        assert r.status_code == 409
        assert r.json() == number_in_use(r, number["id"], current["id"])

    async def test_outbound_agents_share_with_inbound_and_each_other(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        first = await create_agent(tenant, "Dialer 1", "outbound")
        second = await create_agent(tenant, "Dialer 2", "outbound")
        third = await create_agent(tenant, "Dialer 3", "outbound")
        inbound = await create_agent(tenant, "Reception")

        # Attach order differs from creation order: outbound_agent_ids follow attach order.
        await attach(tenant, third["id"], number["id"])
        await attach(tenant, inbound["id"], number["id"])
        await attach(tenant, first["id"], number["id"])
        r = await post_attach(tenant, second["id"], {"number_id": number["id"]})

        expected = with_agents(
            number, inbound=inbound["id"], outbound=[third["id"], first["id"], second["id"]]
        )
        assert r.status_code == 200
        assert r.json() == agent_body(
            tenant,
            id=second["id"],
            name="Dialer 2",
            type="outbound",
            created_at=second["created_at"],
            primary_number_id=number["id"],
            numbers=[expected],
        )
        assert await get_number(tenant, number["id"]) == expected
        assert (await get_agent(tenant, inbound["id"]))["numbers"] == [expected]

    async def test_unknown_number(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        missing = random_id()

        r = await post_attach(tenant, agent["id"], {"number_id": missing})

        assert r.status_code == 404
        assert r.json() == error(r, f"number {missing} not found", "not_found")
        assert await get_agent(tenant, agent["id"]) == agent

    async def test_other_orgs_number(self, tenant: Tenant, other_tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        foreign = await buy_number(other_tenant)

        r = await post_attach(tenant, agent["id"], {"number_id": foreign["id"]})

        assert r.status_code == 404
        assert r.json() == error(r, f"number {foreign['id']} not found", "not_found")
        assert await get_agent(tenant, agent["id"]) == agent
        assert await get_number(other_tenant, foreign["id"]) == foreign

    async def test_released_number(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        number = await buy_number(tenant)
        await release_number(tenant, number["id"])

        r = await post_attach(tenant, agent["id"], {"number_id": number["id"]})

        assert r.status_code == 404
        assert r.json() == error(r, f"number {number['id']} not found", "not_found")
        assert await get_agent(tenant, agent["id"]) == agent

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            pytest.param({}, "missing required field: number_id", id="missing-number-id"),
            pytest.param(
                {"set_as_primary": True},
                "missing required field: number_id",
                id="only-set-as-primary",
            ),
            pytest.param(
                {"number_id": "x"},
                "invalid field number_id: must be an id (a UUID)",
                id="not-a-uuid",
            ),
            pytest.param(
                {"number_id": None},
                "invalid field number_id: must be an id (a UUID)",
                id="null-number-id",
            ),
            pytest.param(
                {"number_id": "NUMBER", "set_as_primary": "maybe"},
                "invalid field number_id: must be an id (a UUID)",
                id="both-bad",
            ),
            pytest.param(
                {"set_as_primary": "maybe"},
                "missing required field: number_id",
                id="bad-flag-without-number",
            ),
            pytest.param(["x"], "request body must be a JSON object", id="not-an-object"),
        ],
    )
    async def test_bad_body(self, tenant: Tenant, body: Any, message: str) -> None:
        agent = await create_agent(tenant)

        r = await post_attach(tenant, agent["id"], body)

        assert r.status_code == 400
        assert r.json() == error(r, message)

    async def test_unknown_field(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant)

        r = await post_attach(tenant, agent["id"], {"number_id": number["id"], "primary": True})

        assert r.status_code == 400
        assert r.json() == error(r, "unknown field: primary")
        assert await get_agent(tenant, agent["id"]) == agent

    @pytest.mark.parametrize("flag", ["true", 1])
    async def test_set_as_primary_must_be_a_boolean(self, tenant: Tenant, flag: Any) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"]])

        r = await post_attach(
            tenant, agent["id"], {"number_id": second["id"], "set_as_primary": flag}
        )

        assert r.status_code == 400
        assert r.json() == error(r, "invalid field set_as_primary: must be true or false")
        assert await get_agent(tenant, agent["id"]) == agent
        assert await get_number(tenant, second["id"]) == with_agents(second)

    async def test_other_orgs_agent(self, tenant: Tenant, other_tenant: Tenant) -> None:
        number = await buy_number(tenant)
        foreign = await create_agent(other_tenant)

        r = await post_attach(tenant, foreign["id"], {"number_id": number["id"]})

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])
        assert await get_agent(other_tenant, foreign["id"]) == foreign
        assert await get_number(tenant, number["id"]) == with_agents(number)

    @pytest.mark.parametrize("agent_id", MISSING_AGENT_IDS)
    async def test_missing_agent(self, tenant: Tenant, agent_id: str) -> None:
        number = await buy_number(tenant)

        r = await post_attach(tenant, agent_id, {"number_id": number["id"]})

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, agent_id)
