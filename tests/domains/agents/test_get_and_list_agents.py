"""GET /v1/agents/{id} and GET /v1/agents: archived agents, filters, order, tenancy."""

from __future__ import annotations

import pytest

from tests.fixtures.factories import (
    agent_body,
    agent_not_found,
    archive,
    attach,
    buy_number,
    create_agent,
    error,
    get_agent,
    random_id,
    with_agents,
)
from tests.fixtures.tenants import Tenant


class TestGetAgent:
    async def test_own_agent(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        created = await create_agent(tenant, number_ids=[number["id"]])

        r = await tenant.client.get(f"/v1/agents/{created['id']}")

        assert r.status_code == 200
        assert r.json() == created
        assert r.json() == agent_body(
            tenant,
            id=created["id"],
            primary_number_id=number["id"],
            numbers=[with_agents(number, inbound=created["id"])],
        )

    async def test_archived_agent(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        archived = await archive(tenant, agent["id"])

        r = await tenant.client.get(f"/v1/agents/{agent['id']}")

        assert r.status_code == 200
        assert r.json() == archived
        assert r.json()["archived_at"] is not None

    async def test_other_orgs_agent_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        foreign = await create_agent(other_tenant)

        r = await tenant.client.get(f"/v1/agents/{foreign['id']}")

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])

    async def test_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        missing = random_id()

        r = await tenant.client.get(f"/v1/agents/{missing}")

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, missing)

    @pytest.mark.parametrize("bad_id", ["abc", "123", "not-a-uuid-at-all"])
    async def test_id_that_is_not_a_uuid_is_not_found(self, tenant: Tenant, bad_id: str) -> None:
        r = await tenant.client.get(f"/v1/agents/{bad_id}")

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, bad_id)


class TestListAgents:
    async def test_empty(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/agents")

        assert r.status_code == 200
        assert r.json() == {"data": [], "has_more": False}

    async def test_newest_first(self, tenant: Tenant) -> None:
        first = await create_agent(tenant, "First")
        second = await create_agent(tenant, "Second", "outbound")
        third = await create_agent(tenant, "Third")

        r = await tenant.client.get("/v1/agents")

        assert r.status_code == 200
        assert r.json() == {"data": [third, second, first], "has_more": False}

    async def test_filter_by_type(self, tenant: Tenant) -> None:
        inbound_1 = await create_agent(tenant, "In 1", "inbound")
        outbound_1 = await create_agent(tenant, "Out 1", "outbound")
        inbound_2 = await create_agent(tenant, "In 2", "inbound")
        outbound_2 = await create_agent(tenant, "Out 2", "outbound")

        inbound = await tenant.client.get("/v1/agents", params={"type": "inbound"})
        outbound = await tenant.client.get("/v1/agents", params={"type": "outbound"})

        assert inbound.status_code == outbound.status_code == 200
        assert inbound.json() == {"data": [inbound_2, inbound_1], "has_more": False}
        assert outbound.json() == {"data": [outbound_2, outbound_1], "has_more": False}

    async def test_archived_excluded_by_default(self, tenant: Tenant) -> None:
        kept = await create_agent(tenant, "Kept")
        gone = await create_agent(tenant, "Gone")
        await archive(tenant, gone["id"])

        r = await tenant.client.get("/v1/agents")

        assert r.status_code == 200
        assert r.json() == {"data": [kept], "has_more": False}

    async def test_include_archived(self, tenant: Tenant) -> None:
        kept = await create_agent(tenant, "Kept")
        gone = await create_agent(tenant, "Gone", "outbound")
        archived = await archive(tenant, gone["id"])

        everything = await tenant.client.get("/v1/agents", params={"include_archived": "true"})
        explicit_false = await tenant.client.get("/v1/agents", params={"include_archived": "false"})
        outbound = await tenant.client.get(
            "/v1/agents", params={"include_archived": "true", "type": "outbound"}
        )

        assert everything.status_code == explicit_false.status_code == outbound.status_code == 200
        assert everything.json() == {"data": [archived, kept], "has_more": False}
        assert explicit_false.json() == {"data": [kept], "has_more": False}
        assert outbound.json() == {"data": [archived], "has_more": False}

    async def test_numbers_included_for_every_agent(self, tenant: Tenant) -> None:
        shared = await buy_number(tenant, 1)
        own = await buy_number(tenant, 2)
        inbound = await create_agent(tenant, "Reception", number_ids=[shared["id"]])
        outbound = await create_agent(
            tenant, "Dialer", "outbound", number_ids=[own["id"], shared["id"]]
        )
        bare = await create_agent(tenant, "Bare")

        r = await tenant.client.get("/v1/agents")

        assert r.status_code == 200
        shared_now = with_agents(shared, inbound=inbound["id"], outbound=[outbound["id"]])
        assert r.json() == {
            "data": [
                agent_body(tenant, id=bare["id"], name="Bare"),
                agent_body(
                    tenant,
                    id=outbound["id"],
                    name="Dialer",
                    type="outbound",
                    primary_number_id=own["id"],
                    numbers=[with_agents(own, outbound=[outbound["id"]]), shared_now],
                ),
                agent_body(
                    tenant,
                    id=inbound["id"],
                    name="Reception",
                    primary_number_id=shared["id"],
                    numbers=[shared_now],
                ),
            ],
            "has_more": False,
        }

    async def test_numbers_in_attach_order(self, tenant: Tenant) -> None:
        numbers = [await buy_number(tenant, line) for line in (1, 2, 3)]
        agent = await create_agent(tenant, "Dialer", "outbound")
        for number in (numbers[2], numbers[0], numbers[1]):
            await attach(tenant, agent["id"], number["id"])

        r = await tenant.client.get("/v1/agents")

        assert r.status_code == 200
        assert [n["id"] for n in r.json()["data"][0]["numbers"]] == [
            numbers[2]["id"],
            numbers[0]["id"],
            numbers[1]["id"],
        ]
        assert r.json()["data"] == [await get_agent(tenant, agent["id"])]

    async def test_other_orgs_agents_are_never_listed(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        own = await create_agent(tenant, "Own")
        await create_agent(other_tenant, "Foreign inbound")
        foreign = await create_agent(other_tenant, "Foreign outbound", "outbound")
        await archive(other_tenant, foreign["id"])

        everything = await tenant.client.get("/v1/agents", params={"include_archived": "true"})
        theirs = await other_tenant.client.get("/v1/agents")

        assert everything.status_code == 200
        assert everything.json() == {"data": [own], "has_more": False}
        assert [a["name"] for a in theirs.json()["data"]] == ["Foreign inbound"]

    async def test_limit_and_has_more(self, tenant: Tenant) -> None:
        oldest = await create_agent(tenant, "Oldest")
        middle = await create_agent(tenant, "Middle")
        newest = await create_agent(tenant, "Newest")

        two = await tenant.client.get("/v1/agents", params={"limit": 2})
        three = await tenant.client.get("/v1/agents", params={"limit": 3})
        rest = await tenant.client.get(
            "/v1/agents", params={"limit": 2, "starting_after": middle["id"]}
        )

        assert two.json() == {"data": [newest, middle], "has_more": True}
        assert three.json() == {"data": [newest, middle, oldest], "has_more": False}
        assert rest.json() == {"data": [oldest], "has_more": False}

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            pytest.param(
                {"type": "sideways"},
                "invalid query parameter type: must be inbound or outbound",
                id="bad-type",
            ),
            pytest.param(
                {"include_archived": "maybe"},
                "invalid query parameter include_archived: must be true or false",
                id="bad-include-archived",
            ),
            pytest.param(
                {"limit": 0},
                "invalid query parameter limit: must be at least 1",
                id="limit-zero",
            ),
            pytest.param(
                {"limit": 101},
                "invalid query parameter limit: must be at most 100",
                id="limit-too-big",
            ),
            pytest.param({"colour": "red"}, "unknown query parameter: colour", id="unknown"),
        ],
    )
    async def test_bad_query(
        self, tenant: Tenant, params: dict[str, str | int], message: str
    ) -> None:
        r = await tenant.client.get("/v1/agents", params=params)

        assert r.status_code == 400
        assert r.json() == error(r, message)

    async def test_cursor_of_another_orgs_agent(self, tenant: Tenant, other_tenant: Tenant) -> None:
        await create_agent(tenant)
        foreign = await create_agent(other_tenant)

        r = await tenant.client.get("/v1/agents", params={"starting_after": foreign["id"]})

        assert r.status_code == 400
        assert r.json() == error(
            r, f"invalid query parameter starting_after: no such agent {foreign['id']}"
        )
