"""api.direct: GET /v1/agents/{id} served without FastAPI's dependencies, as its route serves it.

Which way a request went is seen through ``reading_connection``, which only the direct route
uses: the first request of a key this process has not met goes through the FastAPI route, the
next ones are served directly, and the two answers are compared byte for byte.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callingbox_server.api import direct
from callingbox_server.core.db.driver import Reads, reading_connection
from callingbox_server.core.principal import known_orgs
from callingbox_server.domains.keys import repository as keys_repository
from callingbox_server.domains.keys.service import hash_key
from tests.fixtures.factories import agent_not_found, buy_number, create_agent, error
from tests.fixtures.tenants import Tenant

_UNSTABLE = {"x-request-id", "date"}


@pytest.fixture
def direct_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the direct route served (it alone takes a reading connection)."""
    served: list[str] = []

    @asynccontextmanager
    async def counted(
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> AsyncIterator[Reads]:
        served.append("read")
        async with reading_connection(sessionmaker) as connection:
            yield connection

    monkeypatch.setattr(direct, "reading_connection", counted)
    return served


def _forget(app: FastAPI, tenant: Tenant) -> None:
    known_orgs.forget(hash_key(app.state.key_hash_secret, tenant.key))


def _stable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in _UNSTABLE}
    return response.status_code, headers, response.content


class TestGetAgentDirectly:
    async def test_the_first_request_goes_through_the_route_then_direct_with_the_same_bytes(
        self, app: FastAPI, tenant: Tenant, direct_reads: list[str]
    ) -> None:
        number = await buy_number(tenant)
        agent = await create_agent(tenant, number_ids=[number["id"]])
        _forget(app, tenant)

        through_route = await tenant.client.get(f"/v1/agents/{agent['id']}")
        assert direct_reads == []
        served_directly = await tenant.client.get(f"/v1/agents/{agent['id']}")
        assert direct_reads == ["read"]

        assert through_route.status_code == 200
        assert through_route.json() == agent
        assert _stable(served_directly) == _stable(through_route)
        assert set(served_directly.headers) == set(through_route.headers)
        assert served_directly.headers["etag"] == through_route.headers["etag"]
        assert served_directly.headers["content-type"] == "application/json; charset=utf-8"
        assert uuid.UUID(served_directly.headers["x-request-id"])

    async def test_a_missing_agent_is_the_routes_404(
        self, app: FastAPI, tenant: Tenant, direct_reads: list[str]
    ) -> None:
        await create_agent(tenant)  # the key's org is met
        for raw in (str(uuid.uuid4()), "not-a-uuid"):
            r = await tenant.client.get(f"/v1/agents/{raw}")
            _forget(app, tenant)
            through_route = await tenant.client.get(f"/v1/agents/{raw}")

            assert r.status_code == 404
            assert r.json() == agent_not_found(r, raw)
            assert _stable(r)[:2] == _stable(through_route)[:2]
        assert direct_reads == ["read", "read"]

    async def test_another_orgs_agent_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant, direct_reads: list[str]
    ) -> None:
        await create_agent(tenant)
        foreign = await create_agent(other_tenant)

        r = await tenant.client.get(f"/v1/agents/{foreign['id']}")

        assert direct_reads == ["read"]
        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])

    async def test_a_revoked_key_is_refused_at_once_and_forgotten(
        self,
        app: FastAPI,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        direct_reads: list[str],
    ) -> None:
        agent = await create_agent(tenant)
        digest = hash_key(app.state.key_hash_secret, tenant.key)
        assert known_orgs.get(digest) == tenant.org_id
        async with sessionmaker() as session, session.begin():
            assert await keys_repository.revoke_key(session, tenant.key_id) is not None

        r = await tenant.client.get(f"/v1/agents/{agent['id']}")

        assert direct_reads == ["read"]
        assert r.status_code == 401
        assert r.json() == error(r, "invalid or missing API key", "unauthorized")
        assert known_orgs.get(digest) is None
        again = await tenant.client.get(f"/v1/agents/{agent['id']}")
        assert again.status_code == 401
        assert direct_reads == ["read"]  # an unknown key again: the route checked it

    @pytest.mark.parametrize(
        "authorization", [None, "Bearer", "Basic abc", "Bearer sk_test_short", "bearer  x y"]
    )
    async def test_a_malformed_key_is_refused_before_any_read(
        self,
        client: httpx.AsyncClient,
        tenant: Tenant,
        direct_reads: list[str],
        authorization: str | None,
    ) -> None:
        agent = await create_agent(tenant)
        headers = {} if authorization is None else {"Authorization": authorization}

        r = await client.get(f"/v1/agents/{agent['id']}", headers=headers)

        assert r.status_code == 401
        assert r.json() == error(r, "invalid or missing API key", "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert direct_reads == []

    async def test_a_query_string_is_checked_by_the_route(
        self, tenant: Tenant, direct_reads: list[str]
    ) -> None:
        agent = await create_agent(tenant)

        r = await tenant.client.get(f"/v1/agents/{agent['id']}?expand=numbers")

        assert r.status_code == 400
        assert r.json() == error(r, "unknown query parameter: expand", "invalid_request")
        assert direct_reads == []

    async def test_head_sends_the_get_headers_without_a_body(
        self, tenant: Tenant, direct_reads: list[str]
    ) -> None:
        agent = await create_agent(tenant)
        got = await tenant.client.get(f"/v1/agents/{agent['id']}")

        r = await tenant.client.head(f"/v1/agents/{agent['id']}")

        assert direct_reads == ["read", "read"]
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers["etag"] == got.headers["etag"]
        assert r.headers["content-length"] == got.headers["content-length"]

    async def test_other_routes_and_methods_are_the_frameworks(
        self, tenant: Tenant, direct_reads: list[str]
    ) -> None:
        agent = await create_agent(tenant)

        listed = await tenant.client.get("/v1/agents")
        patched = await tenant.client.patch(f"/v1/agents/{agent['id']}", json={"name": "B"})
        nested = await tenant.client.get(f"/v1/agents/{agent['id']}/numbers")

        assert (listed.status_code, patched.status_code, nested.status_code) == (200, 200, 405)
        assert direct_reads == []

    async def test_the_access_line_names_the_route_and_the_org(
        self, tenant: Tenant, direct_reads: list[str], caplog: pytest.LogCaptureFixture
    ) -> None:
        agent = await create_agent(tenant)
        caplog.set_level("INFO", logger="callingbox_server.access")

        r = await tenant.client.get(f"/v1/agents/{agent['id']}", headers={"X-Request-Id": "d-1"})

        assert direct_reads == ["read"]
        assert r.headers["x-request-id"] == "d-1"
        (line,) = [
            record.msg
            for record in caplog.records
            if record.name == "callingbox_server.access"
            and isinstance(record.msg, dict)
            and record.msg.get("request_id") == "d-1"
        ]
        assert (line["method"], line["route"], line["status"], line["org_id"]) == (
            "GET",
            "/v1/agents/{id}",
            200,
            str(tenant.org_id),
        )
