"""Every call and test-helper endpoint: another org's call reads exactly like a missing one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domains.calls.calls import destination, dispatch, get_call, outbound_agent
from tests.domains.calls.conftest import Runner
from tests.fixtures.factories import error, random_id
from tests.fixtures.tenants import Tenant

ENDPOINTS = [
    pytest.param("GET", "/v1/calls/{id}", None, id="get"),
    pytest.param("GET", "/v1/calls/{id}/transcript", None, id="transcript"),
    pytest.param("POST", "/v1/calls/{id}/cancel", None, id="cancel"),
    pytest.param(
        "POST", "/v1/test_helpers/calls/{id}/advance", {"status": "initiated"}, id="advance"
    ),
]


class TestCallTenancy:
    @pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
    async def test_other_orgs_call_looks_missing(
        self,
        tenant: Tenant,
        other_tenant: Tenant,
        runner: Runner,
        method: str,
        path: str,
        body: dict[str, Any] | None,
    ) -> None:
        agent = await outbound_agent(other_tenant)
        foreign = await dispatch(other_tenant, agent_id=agent["id"], to=destination("0009"))
        for call_id in (foreign["id"], random_id()):
            r = await tenant.client.request(method, path.format(id=call_id), json=body)
            assert r.status_code == 404
            assert r.json() == error(r, f"call {call_id} not found", "not_found")
        assert await get_call(other_tenant, foreign["id"]) == foreign
        assert await runner.events(foreign["id"]) == ["call.queued"]

    async def test_lists_show_only_the_orgs_calls(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        agent = await outbound_agent(other_tenant)
        await dispatch(other_tenant, agent_id=agent["id"], to=destination("0123"))
        r = await tenant.client.get("/v1/calls")
        assert r.json() == {"data": [], "has_more": False}
        r = await tenant.client.get("/v1/calls", params={"agent_id": agent["id"]})
        assert r.json() == {"data": [], "has_more": False}

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/calls"),
            ("POST", "/v1/calls"),
            ("GET", "/v1/calls/{id}"),
            ("POST", "/v1/calls/{id}/cancel"),
            ("POST", "/v1/test_helpers/calls/{id}/advance"),
            ("POST", "/v1/test_helpers/inbound_calls"),
        ],
    )
    async def test_no_key_is_401(self, client: Any, method: str, path: str) -> None:
        r = await client.request(method, path.format(id=random_id()), json={})
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
