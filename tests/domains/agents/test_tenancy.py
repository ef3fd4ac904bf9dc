"""Every agent endpoint: another org's agent reads exactly like a missing one; no key, no access."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.factories import (
    agent_not_found,
    buy_number,
    create_agent,
    error,
    get_agent,
    get_number,
    random_id,
)
from tests.fixtures.tenants import Tenant

# (method, path after /v1/agents/{id}, body); {number} is a number of the caller's own org.
ENDPOINTS = [
    pytest.param("GET", "", None, id="get"),
    pytest.param("PATCH", "", {"name": "Hijacked"}, id="update"),
    pytest.param("DELETE", "", None, id="archive"),
    pytest.param("POST", "/numbers", {"number_id": "{number}"}, id="attach"),
    pytest.param("DELETE", "/numbers/{number}", None, id="detach"),
    pytest.param("PUT", "/primary-number", {"number_id": "{number}"}, id="set-primary"),
]


def _fill(value: Any, number_id: str) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, number_id) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("{number}", number_id)
    return value


class TestAgentTenancy:
    @pytest.mark.parametrize(("method", "suffix", "body"), ENDPOINTS)
    async def test_other_orgs_agent_looks_missing(
        self,
        tenant: Tenant,
        other_tenant: Tenant,
        method: str,
        suffix: str,
        body: dict[str, Any] | None,
    ) -> None:
        own_number = await buy_number(tenant, 1)
        foreign_number = await buy_number(other_tenant, 2)
        foreign = await create_agent(other_tenant, number_ids=[foreign_number["id"]])
        missing = random_id()

        for agent_id, number_id in (
            (foreign["id"], own_number["id"]),
            (foreign["id"], foreign_number["id"]),
            (missing, own_number["id"]),
        ):
            r = await tenant.client.request(
                method,
                f"/v1/agents/{agent_id}{_fill(suffix, number_id)}",
                json=_fill(body, number_id),
            )
            assert r.status_code == 404
            assert r.json() == agent_not_found(r, agent_id)

        assert await get_agent(other_tenant, foreign["id"]) == foreign
        assert await get_number(other_tenant, foreign_number["id"]) == foreign_number | {
            "inbound_agent_id": foreign["id"]
        }
        assert await get_number(tenant, own_number["id"]) == own_number

    async def test_other_orgs_number_is_not_attachable(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        foreign_number = await buy_number(other_tenant)
        foreign = await create_agent(other_tenant, number_ids=[foreign_number["id"]])
        agent = await create_agent(tenant)

        attach = await tenant.client.post(
            f"/v1/agents/{agent['id']}/numbers", json={"number_id": foreign_number["id"]}
        )
        primary = await tenant.client.put(
            f"/v1/agents/{agent['id']}/primary-number", json={"number_id": foreign_number["id"]}
        )
        detach = await tenant.client.delete(
            f"/v1/agents/{agent['id']}/numbers/{foreign_number['id']}"
        )

        number_id, agent_id = foreign_number["id"], agent["id"]
        assert attach.status_code == 404
        assert attach.json() == error(attach, f"number {number_id} not found", "not_found")
        assert primary.status_code == 400
        assert primary.json() == error(
            primary, f"number {number_id} is not attached to agent {agent_id}"
        )
        assert detach.status_code == 404
        assert detach.json() == error(
            detach, f"number {number_id} is not attached to agent {agent_id}", "not_found"
        )
        assert await get_agent(tenant, agent["id"]) == agent
        assert await get_agent(other_tenant, foreign["id"]) == foreign


class TestAgentAuthentication:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            pytest.param("GET", "", None, id="list"),
            pytest.param("POST", "", {"name": "A", "type": "inbound"}, id="create"),
            pytest.param("GET", "/{agent}", None, id="get"),
            pytest.param("PATCH", "/{agent}", {"name": "B"}, id="update"),
            pytest.param("DELETE", "/{agent}", None, id="archive"),
            pytest.param("POST", "/{agent}/numbers", {"number_id": "{number}"}, id="attach"),
            pytest.param("DELETE", "/{agent}/numbers/{number}", None, id="detach"),
            pytest.param(
                "PUT", "/{agent}/primary-number", {"number_id": "{number}"}, id="set-primary"
            ),
        ],
    )
    async def test_requests_without_a_key_are_unauthorized(
        self,
        tenant: Tenant,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        path = path.replace("{agent}", agent["id"])

        r = await client.request(
            method, f"/v1/agents{_fill(path, number['id'])}", json=_fill(body, number["id"])
        )

        assert r.status_code == 401
        assert r.json() == error(r, "invalid or missing API key", "unauthorized")
        assert await get_agent(tenant, agent["id"]) == agent
