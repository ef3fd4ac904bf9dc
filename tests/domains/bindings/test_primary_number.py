"""PUT /v1/agents/{id}/primary-number: only an attached number can be primary."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.factories import (
    MISSING_AGENT_IDS,
    TIMESTAMP,
    agent_not_found,
    buy_number,
    create_agent,
    error,
    get_agent,
    random_id,
)
from tests.fixtures.tenants import Tenant


async def _set_primary(tenant: Tenant, agent_id: str, body: Any) -> httpx.Response:
    return await tenant.client.put(f"/v1/agents/{agent_id}/primary-number", json=body)


class TestSetPrimaryNumber:
    async def test_switches_to_an_attached_number(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(
            tenant, "Dialer", "outbound", number_ids=[first["id"], second["id"]]
        )

        r = await _set_primary(tenant, agent["id"], {"number_id": second["id"]})

        assert r.status_code == 200
        assert r.json() == {**agent, "primary_number_id": second["id"], "updated_at": TIMESTAMP}
        assert r.json()["updated_at"] > agent["updated_at"]
        assert await get_agent(tenant, agent["id"]) == r.json()

    async def test_switching_back_and_forth(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[first["id"], second["id"]])

        await _set_primary(tenant, agent["id"], {"number_id": second["id"]})
        r = await _set_primary(tenant, agent["id"], {"number_id": first["id"]})

        assert r.status_code == 200
        assert r.json()["primary_number_id"] == first["id"]
        assert r.json()["numbers"] == agent["numbers"]

    async def test_current_primary_is_a_no_op(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])

        r = await _set_primary(tenant, agent["id"], {"number_id": number["id"]})

        assert r.status_code == 200
        assert r.json() == agent

    async def test_after_primary_was_cleared(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        cleared = await tenant.client.patch(
            f"/v1/agents/{agent['id']}", json={"primary_number_id": None}
        )
        assert cleared.json()["primary_number_id"] is None

        r = await _set_primary(tenant, agent["id"], {"number_id": number["id"]})

        assert r.status_code == 200
        assert r.json() == {**agent, "updated_at": TIMESTAMP}

    async def test_number_not_attached(self, tenant: Tenant) -> None:
        attached = await buy_number(tenant, 1)
        other = await buy_number(tenant, 2)
        agent = await create_agent(tenant, number_ids=[attached["id"]])
        await create_agent(tenant, "Holder", number_ids=[other["id"]])

        r = await _set_primary(tenant, agent["id"], {"number_id": other["id"]})

        assert r.status_code == 400
        assert r.json() == error(r, f"number {other['id']} is not attached to agent {agent['id']}")
        assert await get_agent(tenant, agent["id"]) == agent

    async def test_agent_without_numbers(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant)

        r = await _set_primary(tenant, agent["id"], {"number_id": number["id"]})

        assert r.status_code == 400
        assert r.json() == error(r, f"number {number['id']} is not attached to agent {agent['id']}")
        assert await get_agent(tenant, agent["id"]) == agent

    async def test_unknown_number(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        missing = random_id()

        r = await _set_primary(tenant, agent["id"], {"number_id": missing})

        assert r.status_code == 400
        assert r.json() == error(r, f"number {missing} is not attached to agent {agent['id']}")
        assert await get_agent(tenant, agent["id"]) == agent

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            pytest.param({}, "missing required field: number_id", id="missing"),
            pytest.param(
                {"number_id": "x"},
                "invalid field number_id: must be an id (a UUID)",
                id="not-a-uuid",
            ),
            pytest.param(
                {"number_id": random_id(), "set_as_primary": True},
                "unknown field: set_as_primary",
                id="unknown-field",
            ),
            pytest.param("x", "request body must be a JSON object", id="not-an-object"),
        ],
    )
    async def test_bad_body(self, tenant: Tenant, body: Any, message: str) -> None:
        agent = await create_agent(tenant)

        r = await _set_primary(tenant, agent["id"], body)

        assert r.status_code == 400
        assert r.json() == error(r, message)

    async def test_other_orgs_agent(self, tenant: Tenant, other_tenant: Tenant) -> None:
        number = await buy_number(other_tenant)
        foreign = await create_agent(other_tenant, number_ids=[number["id"]])

        r = await _set_primary(tenant, foreign["id"], {"number_id": number["id"]})

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])
        assert await get_agent(other_tenant, foreign["id"]) == foreign

    @pytest.mark.parametrize("agent_id", MISSING_AGENT_IDS)
    async def test_missing_agent(self, tenant: Tenant, agent_id: str) -> None:
        number = await buy_number(tenant)

        r = await _set_primary(tenant, agent_id, {"number_id": number["id"]})

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, agent_id)
