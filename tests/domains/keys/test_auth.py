"""Bearer API keys: every failure is one 401, whatever the cause."""

from __future__ import annotations

import secrets
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callingbox_server.core.principal import MAX_KNOWN_KEYS, KnownOrgs, known_orgs
from callingbox_server.domains.keys import repository as keys_repository
from callingbox_server.domains.keys.service import hash_key
from tests.fixtures.database import HASH_SECRET
from tests.fixtures.keys import create_key
from tests.fixtures.numbers import phone
from tests.fixtures.tenants import Tenant

REQUEST_ID = "auth-test-request"
UNAUTHORIZED = (
    b'{"error":"invalid or missing API key","code":"unauthorized","request_id":"'
    + REQUEST_ID.encode()
    + b'"}'
)

# Every /v1 method and path of API.md section 3, with a body the route would accept.
ANY_ID = "5b0d7c8e-2f4e-4c55-9a3e-0f1d2c3b4a59"
ENDPOINTS: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/v1/agents", None),
    ("POST", "/v1/agents", {"name": "x", "type": "inbound"}),
    ("GET", f"/v1/agents/{ANY_ID}", None),
    ("PATCH", f"/v1/agents/{ANY_ID}", {"name": "y"}),
    ("DELETE", f"/v1/agents/{ANY_ID}", None),
    ("POST", f"/v1/agents/{ANY_ID}/numbers", {"number_id": ANY_ID}),
    ("DELETE", f"/v1/agents/{ANY_ID}/numbers/{ANY_ID}", None),
    ("PUT", f"/v1/agents/{ANY_ID}/primary-number", {"number_id": ANY_ID}),
    ("GET", "/v1/numbers", None),
    ("GET", f"/v1/numbers/{ANY_ID}", None),
    ("GET", "/v1/numbers/available", None),
    ("POST", "/v1/numbers/purchase", {"phone_number": "+19075550100"}),
    ("DELETE", f"/v1/numbers/{ANY_ID}", None),
]


def well_formed_key(mode: str = "live") -> str:
    return f"sk_{mode}_{secrets.token_urlsafe(32)}"


async def get_agents(client: httpx.AsyncClient, authorization: str | None) -> httpx.Response:
    headers = {"X-Request-Id": REQUEST_ID}
    if authorization is not None:
        headers["Authorization"] = authorization
    return await client.get("/v1/agents", headers=headers)


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["x-request-id"] == REQUEST_ID
    assert r.content == UNAUTHORIZED
    assert r.json() == {
        "error": "invalid or missing API key",
        "code": "unauthorized",
        "request_id": REQUEST_ID,
    }


class TestRejectedCredentials:
    async def test_missing_header(self, client: httpx.AsyncClient) -> None:
        assert_unauthorized(await get_agents(client, None))

    @pytest.mark.parametrize(
        "authorization",
        [
            "",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "Token sk_live_0123456789abcdefghijklmnopqrstuvwxyzABCD",
            "sk_live_0123456789abcdefghijklmnopqrstuvwxyzABCD",
        ],
        ids=["empty", "scheme-only", "scheme-and-space", "basic", "other-scheme", "no-scheme"],
    )
    async def test_wrong_scheme(self, client: httpx.AsyncClient, authorization: str) -> None:
        assert_unauthorized(await get_agents(client, authorization))

    @pytest.mark.parametrize(
        "key",
        [
            "sk_live_short",
            "sk_prod_0123456789abcdefghijklmnopqrstuvwxyzABCD",
            "pk_live_0123456789abcdefghijklmnopqrstuvwxyzABCD",
            "sk_live_0123456789abcdefghijklmnopqrstuvwxyz+/==",
            "sk_live_" + "a" * 200,
            "sk_live_0123456789abcdefghijklmnopqrstuvwxyzABCD extra",
        ],
        ids=["too-short", "unknown-mode", "wrong-prefix", "not-url-safe", "too-long", "two-words"],
    )
    async def test_malformed_key(self, client: httpx.AsyncClient, key: str) -> None:
        assert_unauthorized(await get_agents(client, f"Bearer {key}"))

    async def test_unknown_well_formed_key(self, client: httpx.AsyncClient) -> None:
        assert_unauthorized(await get_agents(client, f"Bearer {well_formed_key()}"))
        assert_unauthorized(await get_agents(client, f"Bearer {well_formed_key('test')}"))

    async def test_real_key_with_one_character_changed(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        last = "A" if tenant.key[-1] != "A" else "B"
        assert_unauthorized(await get_agents(client, f"Bearer {tenant.key[:-1]}{last}"))

    async def test_revoked_key(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create_key(sessionmaker)
        assert (await get_agents(client, f"Bearer {created.secret}")).status_code == 200
        async with sessionmaker() as session:
            assert await keys_repository.revoke_key(session, created.id)
            await session.commit()
        assert_unauthorized(await get_agents(client, f"Bearer {created.secret}"))

    async def test_expired_key(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create_key(sessionmaker, expires_in_days=1)
        assert (await get_agents(client, f"Bearer {created.secret}")).status_code == 200
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE id = :id"),
                {"id": created.id},
            )
            await session.commit()
        assert_unauthorized(await get_agents(client, f"Bearer {created.secret}"))

    async def test_every_cause_gives_the_same_bytes(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        revoked = await create_key(sessionmaker)
        expired = await create_key(sessionmaker, expires_in_days=1)
        async with sessionmaker() as session:
            await keys_repository.revoke_key(session, revoked.id)
            await session.execute(
                text("UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE id = :id"),
                {"id": expired.id},
            )
            await session.commit()
        causes = [
            None,
            f"Basic {revoked.secret}",
            "Bearer sk_live_nope",
            f"Bearer {well_formed_key()}",
            f"Bearer {revoked.secret}",
            f"Bearer {expired.secret}",
        ]
        responses = [await get_agents(client, cause) for cause in causes]
        assert {r.status_code for r in responses} == {401}
        assert {r.content for r in responses} == {UNAUTHORIZED}
        assert {tuple(sorted(r.headers.items())) for r in responses} == {
            tuple(sorted(responses[0].headers.items()))
        }


class TestAcceptedCredentials:
    async def test_live_key(self, tenant: Tenant) -> None:
        assert tenant.key.startswith("sk_live_")
        r = await tenant.client.get("/v1/agents")
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [], "has_more": False}

    async def test_test_key(
        self,
        client: httpx.AsyncClient,
        sessionmaker: async_sessionmaker[AsyncSession],
        area_code: str,
    ) -> None:
        created = await create_key(sessionmaker, mode="test")
        assert created.secret.startswith("sk_test_")
        headers = {"Authorization": f"Bearer {created.secret}"}
        r = await client.post(
            "/v1/numbers/purchase", json={"phone_number": phone(0, area_code)}, headers=headers
        )
        assert r.status_code == 201, r.text
        listed = await client.get("/v1/numbers", headers=headers)
        assert listed.status_code == 200, listed.text
        assert listed.json() == {"data": [r.json()], "has_more": False}

    async def test_key_that_has_not_yet_expired(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create_key(sessionmaker, expires_in_days=1)
        r = await get_agents(client, f"Bearer {created.secret}")
        assert r.status_code == 200, r.text

    async def test_every_key_of_an_org_sees_its_objects(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], app: FastAPI
    ) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": tenant.phones.phone(0)}
        )
        assert r.status_code == 201, r.text
        async with sessionmaker() as session:
            org_name = (
                await session.execute(
                    text("SELECT name FROM orgs WHERE id = :id"), {"id": tenant.org_id}
                )
            ).scalar_one()
        same_org = await create_key(sessionmaker, org_name=org_name)
        assert same_org.org_id == tenant.org_id
        elsewhere = await create_key(sessionmaker)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            mine = await client.get(
                "/v1/numbers", headers={"Authorization": f"Bearer {same_org.secret}"}
            )
            theirs = await client.get(
                "/v1/numbers", headers={"Authorization": f"Bearer {elsewhere.secret}"}
            )
        assert mine.json() == {"data": [r.json()], "has_more": False}
        assert theirs.json() == {"data": [], "has_more": False}

    async def test_revoking_one_key_leaves_the_others(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        other = await create_key(sessionmaker)
        async with sessionmaker() as session:
            await keys_repository.revoke_key(session, other.id)
            await session.commit()
        r = await tenant.client.get("/v1/agents")
        assert r.status_code == 200, r.text


class TestEveryEndpointRequiresAuth:
    @pytest.mark.parametrize(
        ("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
    )
    async def test_without_a_key(
        self, client: httpx.AsyncClient, method: str, path: str, body: dict[str, object] | None
    ) -> None:
        r = await client.request(method, path, json=body, headers={"X-Request-Id": REQUEST_ID})
        assert_unauthorized(r)

    @pytest.mark.parametrize(
        ("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
    )
    async def test_with_an_unknown_key(
        self, client: httpx.AsyncClient, method: str, path: str, body: dict[str, object] | None
    ) -> None:
        headers = {"X-Request-Id": REQUEST_ID, "Authorization": f"Bearer {well_formed_key()}"}
        r = await client.request(method, path, json=body, headers=headers)
        assert_unauthorized(r)

    @pytest.mark.parametrize(
        ("method", "path"),
        [(m, p) for m, p, b in ENDPOINTS if b is not None],
        ids=[f"{m} {p}" for m, p, b in ENDPOINTS if b is not None],
    )
    async def test_auth_comes_before_body_checks(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        headers = {"X-Request-Id": REQUEST_ID, "Content-Type": "text/plain"}
        r = await client.request(method, path, content=b"{not json", headers=headers)
        assert_unauthorized(r)


class TestKeyCheckedWithTheRead:
    """GET /v1/agents/{id} checks a key whose org is known in the same statement as the read."""

    async def test_a_key_revoked_after_use_is_refused_and_forgotten(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create_key(sessionmaker)
        headers = {"Authorization": f"Bearer {created.secret}", "X-Request-Id": REQUEST_ID}
        made = await client.post(
            "/v1/agents", json={"name": "a", "type": "inbound"}, headers=headers
        )
        assert made.status_code == 201, made.text
        path = f"/v1/agents/{made.json()['id']}"
        digest = hash_key(HASH_SECRET.encode(), created.secret)
        assert known_orgs.get(digest) == created.org_id
        assert (await client.get(path, headers=headers)).content == made.content
        async with sessionmaker() as session:
            assert await keys_repository.revoke_key(session, created.id)
            await session.commit()
        assert_unauthorized(await client.get(path, headers=headers))
        assert known_orgs.get(digest) is None
        assert_unauthorized(await client.get(path, headers=headers))  # now refused up front

    async def test_a_key_expired_after_use_is_refused(
        self, client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        created = await create_key(sessionmaker, expires_in_days=1)
        headers = {"Authorization": f"Bearer {created.secret}", "X-Request-Id": REQUEST_ID}
        path = f"/v1/agents/{ANY_ID}"
        assert (await client.get(path, headers=headers)).status_code == 404
        async with sessionmaker() as session:
            await session.execute(
                text("UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE id = :id"),
                {"id": created.id},
            )
            await session.commit()
        assert_unauthorized(await client.get(path, headers=headers))

    async def test_a_missing_agent_is_404_for_a_known_key(self, tenant: Tenant) -> None:
        for _ in range(2):  # the first request learns the key's org, the second reads with it
            r = await tenant.client.get(f"/v1/agents/{ANY_ID}")
            assert r.status_code == 404, r.text
            assert r.json()["error"] == f"agent {ANY_ID} not found"


class TestKnownOrgs:
    def test_remember_get_forget(self) -> None:
        orgs = KnownOrgs()
        org_id = uuid.uuid4()
        orgs.remember(b"k", org_id)
        assert orgs.get(b"k") == org_id
        orgs.forget(b"k")
        assert orgs.get(b"k") is None
        orgs.forget(b"k")  # forgetting an unknown key is fine

    def test_bounded(self) -> None:
        orgs = KnownOrgs()
        for n in range(MAX_KNOWN_KEYS + 1):
            orgs.remember(n.to_bytes(4), uuid.uuid4())
        assert len(orgs) == 1
