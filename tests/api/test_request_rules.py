"""HTTP semantics and input rules at the edge: HEAD, 401's challenge, UTF-8 bodies, query
parameters (their number, repeats, strict integers), and names made of invisible characters."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callingbox_server.api.app import create_app, openapi_document
from callingbox_server.core.config import Settings
from callingbox_server.core.text import NOT_BLANK_PATTERN
from tests.fixtures.factories import buy_number, create_agent, error
from tests.fixtures.tenants import Tenant, make_tenant

AGENT = {"name": "Front desk", "type": "outbound"}


class TestHead:
    @pytest.mark.parametrize("path", ["/v1/agents", "/v1/numbers", "/v1/numbers/available"])
    async def test_lists_answer_head_like_get_without_a_body(
        self, tenant: Tenant, path: str
    ) -> None:
        await create_agent(tenant, type="outbound")
        got = await tenant.client.get(path)
        head = await tenant.client.head(path)

        assert head.status_code == got.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers["content-type"] == got.headers["content-type"]

    async def test_an_agent_answers_head_with_its_etag(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant, type="outbound")
        got = await tenant.client.get(f"/v1/agents/{agent['id']}")
        head = await tenant.client.head(f"/v1/agents/{agent['id']}")

        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["etag"] == got.headers["etag"]

    async def test_a_number_answers_head(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        head = await tenant.client.head(f"/v1/numbers/{number['id']}")

        assert head.status_code == 200
        assert head.content == b""

    async def test_errors_keep_their_status_and_lose_their_body(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        assert (await client.head("/v1/agents")).status_code == 401
        missing = await tenant.client.head("/v1/agents/0b9e6c1a-5d3f-4c27-9a8e-1f2b3c4d5e6f")
        assert missing.status_code == 404
        assert missing.content == b""
        assert int(missing.headers["content-length"]) > 0

    async def test_health_answers_head(self, client: httpx.AsyncClient) -> None:
        head = await client.head("/healthz")

        assert head.status_code == 200
        assert head.content == b""

    async def test_head_where_no_get_is_served_is_405(self, tenant: Tenant) -> None:
        r = await tenant.client.head("/v1/numbers/purchase")

        assert r.status_code == 405
        assert r.headers["allow"] == "POST"

    async def test_allow_lists_head_with_get(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/agents")

        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD, POST"


class TestUnauthorized:
    async def test_401_names_the_bearer_scheme(self, client: httpx.AsyncClient) -> None:
        for headers in ({}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer nope"}):
            r = await client.get("/v1/agents", headers=headers)

            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"

    def test_the_document_says_so(self) -> None:
        responses = openapi_document()["paths"]["/v1/agents"]["get"]["responses"]

        challenge = responses["401"]["headers"]["WWW-Authenticate"]
        assert challenge["description"] == "The scheme to authenticate with: always `Bearer`."
        assert challenge["schema"] == {"type": "string", "examples": ["Bearer"]}
        assert set(responses["429"]["headers"]) == {"Retry-After", "RateLimit", "RateLimit-Policy"}


NOT_UTF8 = "request body must be JSON encoded as UTF-8"


class TestUtf8Bodies:
    @pytest.mark.parametrize(
        "encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]
    )
    async def test_utf16_and_utf32_are_400(self, tenant: Tenant, encoding: str) -> None:
        body = json.dumps(AGENT).encode(encoding)  # "utf-16" and "utf-32" begin with a BOM
        r = await tenant.client.post(
            "/v1/agents", content=body, headers={"Content-Type": "application/json"}
        )

        assert r.status_code == 400
        assert r.json() == error(r, NOT_UTF8)

    @pytest.mark.parametrize("charset", ["utf-16", "UTF-32", "latin-1", '"utf-16le"'])
    async def test_another_charset_is_400(self, tenant: Tenant, charset: str) -> None:
        r = await tenant.client.post(
            "/v1/agents",
            content=json.dumps(AGENT).encode(charset.strip('"').replace("latin-1", "latin_1")),
            headers={"Content-Type": f"application/json; charset={charset}"},
        )

        assert r.status_code == 400
        assert r.json() == error(r, NOT_UTF8)

    async def test_bytes_that_are_not_utf8_are_400(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/agents",
            content=b'{"name": "caf\xe9", "type": "outbound"}',
            headers={"Content-Type": "application/json"},
        )

        assert r.status_code == 400
        assert r.json() == error(r, NOT_UTF8)

    async def test_refused_before_the_key_is_checked(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/v1/agents",
            content=json.dumps(AGENT).encode("utf-16"),
            headers={"Content-Type": "application/json"},
        )

        assert r.status_code == 400
        assert r.json() == error(r, NOT_UTF8)

    @pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"', "utf8"])
    async def test_utf8_with_or_without_charset_is_accepted(
        self, tenant: Tenant, charset: str
    ) -> None:
        body = {**AGENT, "name": "Café 中 ☎"}
        r = await tenant.client.post(
            "/v1/agents",
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": f"application/json; charset={charset}"},
        )

        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Café 中 ☎"

    async def test_nothing_is_created(self, tenant: Tenant) -> None:
        await tenant.client.post(
            "/v1/agents",
            content=json.dumps(AGENT).encode("utf-16"),
            headers={"Content-Type": "application/json"},
        )

        assert (await tenant.client.get("/v1/agents")).json()["data"] == []


# Invisible: default-ignorable code points of the BMP; blank: only those and whitespace.
INVISIBLE = [
    "\u200b", "\ufeff", "\u200c", "\u200d", "\u200e", "\u2060", "\u2063", "\u00ad", "\u034f",
    "\u061c", "\u115f", "\u3164", "\uffa0", "\u180e", "\ufe0f", "\u202e", "\u206f",
]  # fmt: skip


class TestInvisibleNames:
    @pytest.mark.parametrize("name", [*INVISIBLE, "\u200b\ufeff", " \u200b\u3000", "\u00a0\u2060"])
    async def test_a_name_of_only_invisible_characters_is_blank(
        self, tenant: Tenant, name: str
    ) -> None:
        r = await tenant.client.post("/v1/agents", json={**AGENT, "name": name})

        assert r.status_code == 400
        assert r.json() == error(r, "invalid field name: must not be blank")

    async def test_so_is_such_a_voice(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/agents", json={**AGENT, "voice": "\u200b"})

        assert r.json() == error(r, "invalid field voice: must not be blank")

    @pytest.mark.parametrize("name", ["a\u200b", "\ufeffDesk", "👩\u200d💻", "中", "é"])
    async def test_visible_text_with_invisible_characters_is_not(
        self, tenant: Tenant, name: str
    ) -> None:
        r = await tenant.client.post("/v1/agents", json={**AGENT, "name": name})

        assert r.status_code == 201, r.text
        assert r.json()["name"] == name

    def test_the_published_pattern_is_the_server_check(self) -> None:
        schema = openapi_document()["components"]["schemas"]["AgentCreate"]["properties"]["name"]
        patterns = [schema.get("pattern")] + [b.get("pattern") for b in schema.get("anyOf", [])]

        assert NOT_BLANK_PATTERN in patterns
        # Every whitespace character is blank too (what str.isspace says, less controls).
        for code in range(0xA0, 0x10000):
            char = chr(code)
            if char.isspace() or char in INVISIBLE:
                assert not re.fullmatch(NOT_BLANK_PATTERN, char), hex(code)


class TestQueryIntegers:
    @pytest.mark.parametrize("value", ["1_0", "+5", "5.0", " 5", "5 ", "0x5", "\u0665", "1e1"])
    async def test_anything_but_decimal_digits_is_400(self, tenant: Tenant, value: str) -> None:
        r = await tenant.client.get("/v1/agents", params={"limit": value})

        assert r.status_code == 400
        assert r.json() == error(r, "invalid query parameter limit: must be a whole number")

    async def test_on_available_numbers_too(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"limit": "+5"})

        assert r.status_code == 400

    async def test_digits_are_read(self, tenant: Tenant) -> None:
        for value in ("5", "05", "100"):
            r = await tenant.client.get("/v1/agents", params={"limit": value})
            assert r.status_code == 200, value

    async def test_out_of_range_still_says_the_range(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/agents", params={"limit": "-1"})

        assert r.status_code == 400
        assert r.json() == error(r, "invalid query parameter limit: must be at least 1")


@pytest.fixture
async def roomy_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """An app that lets 20,000 query parameters through, to reach the checks behind the cap."""
    app = create_app(settings.model_copy(update={"max_query_parameters": 20_000}))
    yield app
    await app.state.engine.dispose()


@pytest.fixture
async def roomy_tenant(
    roomy_app: FastAPI, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Tenant]:
    roomy_app.state.sessionmaker = sessionmaker
    tenant = await make_tenant(sessionmaker, roomy_app, "roomy")
    async with tenant.client:
        yield tenant


class TestQueryParameterCount:
    async def test_more_than_the_cap_is_400(self, tenant: Tenant) -> None:
        query = "&".join(f"a{i}" for i in range(101))
        r = await tenant.client.get(f"/v1/agents?{query}")

        assert r.status_code == 400
        assert r.json() == error(r, "too many query parameters: at most 100")

    async def test_the_cap_applies_before_the_key(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/agents?" + "&".join("a" * 101))

        assert r.status_code == 400

    async def test_ten_thousand_names_behind_the_cap_get_the_first_unknown_one(
        self, roomy_tenant: Tenant
    ) -> None:
        # The request; the check is linear now (bench/edge.py times it).
        query = "&".join(f"a{i}" for i in range(10_000))
        r = await roomy_tenant.client.get(f"/v1/agents?{query}")

        assert r.json() == error(r, "unknown query parameter: a0")

    async def test_a_repeat_at_the_end_of_ten_thousand_is_found(self, roomy_tenant: Tenant) -> None:
        query = "&".join(f"a{i}" for i in range(10_000)) + "&a9999"
        r = await roomy_tenant.client.get(f"/v1/agents?{query}")

        assert r.json() == error(r, "query parameter a9999 is given more than once")
