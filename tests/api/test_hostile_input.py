"""Hostile input: every class of it is a clear 400 (or the contract's 404 for path ids), changes
nothing, and never reaches the database as a 500; API keys never reach the logs."""

from __future__ import annotations

import logging
import re
import secrets
import socket
import tempfile
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from callingbox_server.core.text import MULTI_LINE_PATTERN, NOT_BLANK_PATTERN, SINGLE_LINE_PATTERN
from callingbox_server.domains.keys import repository as keys_repository
from tests.fixtures.factories import BUILTIN_TOOL, http_tool
from tests.fixtures.keys import create_key
from tests.fixtures.servers import running_server
from tests.fixtures.tenants import Tenant

AGENT = {"name": "Front desk", "type": "inbound"}
ANY_ID = "5b0d7c8e-2f4e-4c55-9a3e-0f1d2c3b4a59"

# C0 controls other than tab and line breaks, DEL, and C1 controls: refused in every string.
CONTROL = ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
LINE_BREAKS = ["\t", "\n", "\r"]


def agent_with(field: str, value: Any) -> dict[str, Any]:
    """A create body with ``value`` at ``field`` (a dotted path into the first tool for tools)."""
    body: dict[str, Any] = dict(AGENT)
    match field.split("."):
        case ["tool", "headers"]:
            body["tools"] = [http_tool(headers={"X-Trace": value})]
        case ["tool", "header_name"]:
            body["tools"] = [http_tool(headers={value: "v"})]
        case ["tool", name]:
            body["tools"] = [http_tool(**{name: value})]
        case ["builtin", name]:
            body["tools"] = [{**BUILTIN_TOOL, name: value}]
        case ["returns_key"]:
            body["returns"] = {value: "string"}
        case [name]:
            body[name] = value
    return body


def error_field(field: str) -> str:
    return {
        "tool.headers": "tools.0.headers.X-Trace",
        "tool.header_name": "tools.0.headers",
        "returns_key": "returns",
    }.get(field, field.replace("tool.", "tools.0.").replace("builtin.", "tools.0."))


async def agent_count(tenant: Tenant) -> int:
    r = await tenant.client.get("/v1/agents", params={"limit": 100, "include_archived": "true"})
    return len(r.json()["data"])


def assert_bad_request(r: httpx.Response, message: str | re.Pattern[str]) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "code", "request_id"}
    assert body["code"] == "invalid_request"
    if isinstance(message, str):
        assert body["error"] == message
    else:
        assert message.fullmatch(body["error"]), body["error"]


SINGLE_LINE_FIELDS = ["name", "voice", "tool.headers"]
MULTI_LINE_FIELDS = ["persona", "instructions", "tool.description", "builtin.description"]
PATTERN_FIELDS = ["language", "webhook_url", "tool.url", "tool.name", "builtin.builtin"]


class TestControlCharacters:
    @pytest.mark.parametrize("char", CONTROL + LINE_BREAKS, ids=repr)
    @pytest.mark.parametrize("field", SINGLE_LINE_FIELDS + PATTERN_FIELDS)
    async def test_refused_in_single_line_text(self, tenant: Tenant, field: str, char: str) -> None:
        valid = {
            "language": "en",
            "webhook_url": "https://example.com/h",
            "tool.url": "https://example.com/t",
        }
        value = valid.get(field, "ab")
        value = value[:2] + char + value[2:]
        r = await tenant.client.post("/v1/agents", json=agent_with(field, value))
        assert_bad_request(r, re.compile(rf"invalid field {re.escape(error_field(field))}: .+"))
        assert await agent_count(tenant) == 0

    @pytest.mark.parametrize("char", CONTROL, ids=repr)
    @pytest.mark.parametrize("field", MULTI_LINE_FIELDS)
    async def test_refused_in_multi_line_text(self, tenant: Tenant, field: str, char: str) -> None:
        r = await tenant.client.post("/v1/agents", json=agent_with(field, f"a{char}b"))
        assert_bad_request(
            r,
            f"invalid field {error_field(field)}: "
            "must not contain control characters other than tab and line breaks",
        )
        assert await agent_count(tenant) == 0

    @pytest.mark.parametrize("field", MULTI_LINE_FIELDS)
    async def test_multi_line_text_keeps_tabs_and_line_breaks(
        self, tenant: Tenant, field: str
    ) -> None:
        r = await tenant.client.post("/v1/agents", json=agent_with(field, "a\tb\r\nc\nd"))
        assert r.status_code == 201, r.text

    @pytest.mark.parametrize("char", ["\x00", "\x1b", "\x85"], ids=repr)
    async def test_refused_in_an_update(self, tenant: Tenant, char: str) -> None:
        agent = (await tenant.client.post("/v1/agents", json=AGENT)).json()
        r = await tenant.client.patch(f"/v1/agents/{agent['id']}", json={"name": f"x{char}"})
        assert_bad_request(r, "invalid field name: must not contain control characters")
        after = (await tenant.client.get(f"/v1/agents/{agent['id']}")).json()
        assert after == agent

    @pytest.mark.parametrize("field", ["tool.header_name", "returns_key"])
    async def test_refused_in_object_keys(self, tenant: Tenant, field: str) -> None:
        r = await tenant.client.post("/v1/agents", json=agent_with(field, "a\x00b"))
        assert r.status_code == 400, r.text
        assert await agent_count(tenant) == 0

    @pytest.mark.parametrize("where", ["key", "value", "nested"])
    async def test_nul_refused_in_free_form_json(self, tenant: Tenant, where: str) -> None:
        parameters: dict[str, Any] = {
            "key": {"type": "object", "a\x00": 1},
            "value": {"type": "object", "a": "b\x00"},
            "nested": {"type": "object", "a": [{"b": ["\x00"]}]},
        }[where]
        r = await tenant.client.post("/v1/agents", json=agent_with("tool.parameters", parameters))
        assert_bad_request(r, "invalid field tools.0.parameters: must not contain NUL characters")

    def test_the_published_patterns_agree_with_the_checks(self) -> None:
        # The OpenAPI document states these patterns; the server checks the same ones.
        for char in CONTROL:
            for pattern in (SINGLE_LINE_PATTERN, MULTI_LINE_PATTERN, NOT_BLANK_PATTERN):
                assert not re.fullmatch(pattern, f"a{char}b")
        for char in LINE_BREAKS:
            assert not re.fullmatch(SINGLE_LINE_PATTERN, f"a{char}b")
            assert re.fullmatch(MULTI_LINE_PATTERN, f"a{char}b")
        for blank in ("", " ", "\u00a0", "\u2003 \u3000"):
            assert not re.fullmatch(NOT_BLANK_PATTERN, blank)
            assert not blank.strip()
        assert re.fullmatch(NOT_BLANK_PATTERN, " Café ☎ ")


# Every string field at its limit is accepted, one character more is refused.
STRING_LIMITS = [
    ("name", 200, "n"),
    ("voice", 100, "v"),
    ("persona", 32_000, "p"),
    ("instructions", 32_000, "i"),
    ("webhook_url", 2048, "https://example.com/"),
    ("tool.url", 2048, "https://example.com/"),
    ("tool.description", 2000, "d"),
    ("tool.headers", 4096, "h"),
    ("tool.name", 64, "t"),
    ("builtin.builtin", 64, "b"),
    ("returns_key", 64, "r"),
    ("tool.header_name", 128, "H"),
]


class TestLengthLimits:
    @pytest.mark.parametrize(("field", "limit", "prefix"), STRING_LIMITS)
    async def test_strings(self, tenant: Tenant, field: str, limit: int, prefix: str) -> None:
        at_limit = prefix + "a" * (limit - len(prefix))
        r = await tenant.client.post("/v1/agents", json=agent_with(field, at_limit))
        assert r.status_code == 201, r.text
        r = await tenant.client.post("/v1/agents", json=agent_with(field, at_limit + "a"))
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_request"
        assert await agent_count(tenant) == 1

    async def test_language(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/agents", json=agent_with("language", "en-" + "a" * 62))
        assert_bad_request(r, "invalid field language: must be at most 64 characters")

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (
                {"tools": [http_tool(name=f"t{i}") for i in range(17)]},
                "invalid field tools: must have at most 16 items",
            ),
            (
                {"number_ids": [str(uuid.uuid4()) for _ in range(101)]},
                "invalid field number_ids: must have at most 100 items",
            ),
            (
                {"returns": {f"f{i}": "string" for i in range(51)}},
                "invalid field returns: must have at most 50 entries",
            ),
            (
                {"tools": [http_tool(headers={f"H{i}": "v" for i in range(33)})]},
                "invalid field tools.0.headers: must have at most 32 entries",
            ),
        ],
        ids=["tools", "number_ids", "returns", "headers"],
    )
    async def test_arrays_and_maps(
        self, tenant: Tenant, body: dict[str, Any], message: str
    ) -> None:
        r = await tenant.client.post("/v1/agents", json={**AGENT, **body})
        assert_bad_request(r, message)
        assert await agent_count(tenant) == 0


class TestUnknownFields:
    @pytest.mark.parametrize(
        ("method", "path", "body", "field"),
        [
            ("POST", "/v1/agents", {**AGENT, "is_admin": True}, "is_admin"),
            ("POST", "/v1/agents", {**AGENT, "tools": [http_tool(extra=1)]}, "tools.0.extra"),
            # A near spelling of a field is named (see TestFieldHints in test_validation_messages).
            ("PATCH", "/v1/agents/{agent}", {"nmae": "typo"}, "nmae (did you mean name?)"),
            ("POST", "/v1/agents/{agent}/numbers", {"number_id": ANY_ID, "x": 1}, "x"),
            ("PUT", "/v1/agents/{agent}/primary-number", {"number_id": ANY_ID, "x": 1}, "x"),
            ("POST", "/v1/numbers/purchase", {"phone_number": "+14155550100", "x": 1}, "x"),
        ],
        ids=["create", "create-tool", "update", "attach", "set-primary", "purchase"],
    )
    async def test_body_fields(
        self, tenant: Tenant, method: str, path: str, body: dict[str, Any], field: str
    ) -> None:
        agent = (await tenant.client.post("/v1/agents", json=AGENT)).json()
        r = await tenant.client.request(method, path.format(agent=agent["id"]), json=body)
        assert_bad_request(r, f"unknown field: {field}")
        assert (await tenant.client.get(f"/v1/agents/{agent['id']}")).json() == agent

    @pytest.mark.parametrize("path", ["/v1/agents", "/v1/numbers", "/v1/numbers/available"])
    async def test_query_parameters(self, tenant: Tenant, path: str) -> None:
        r = await tenant.client.get(path, params={"api_key": "x"})
        assert_bad_request(r, "unknown query parameter: api_key")

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/agents/{agent}"),
            ("DELETE", "/v1/agents/{agent}"),
            ("POST", "/v1/agents"),
            ("GET", "/v1/numbers/{agent}"),
        ],
    )
    async def test_query_parameters_where_none_are_taken(
        self, tenant: Tenant, method: str, path: str
    ) -> None:
        agent = (await tenant.client.post("/v1/agents", json=AGENT)).json()
        r = await tenant.client.request(
            method,
            path.format(agent=agent["id"]),
            params={"include_archived": "true"},
            json=AGENT if method == "POST" else None,
        )
        assert_bad_request(r, "unknown query parameter: include_archived")
        assert await agent_count(tenant) == 1
        assert (await tenant.client.get(f"/v1/agents/{agent['id']}")).json() == agent


# Hostile query values and path segments, each sent raw (percent-encoded as a client would).
HOSTILE_VALUES = ["%00", "%01", "%1B", "%7F", "%C2%85", "%FF", "%ED%A0%80", "a" * 5000, "%0D%0A"]


class TestQueryAndPath:
    @pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: v[:12])
    @pytest.mark.parametrize(
        ("path", "parameter"),
        [
            ("/v1/agents", "starting_after"),
            ("/v1/agents", "ending_before"),
            ("/v1/agents", "limit"),
            ("/v1/agents", "type"),
            ("/v1/agents", "include_archived"),
            ("/v1/numbers", "starting_after"),
            ("/v1/numbers", "ending_before"),
            ("/v1/numbers", "status"),
            ("/v1/numbers/available", "area_code"),
            ("/v1/numbers/available", "country_code"),
            ("/v1/numbers/available", "number_type"),
            ("/v1/numbers/available", "limit"),
        ],
    )
    async def test_query_values(
        self, tenant: Tenant, path: str, parameter: str, value: str
    ) -> None:
        r = await tenant.client.get(f"{path}?{parameter}={value}")
        assert_bad_request(r, re.compile(rf"invalid query parameter {parameter}: .+", re.DOTALL))

    @pytest.mark.parametrize("value", HOSTILE_VALUES, ids=lambda v: v[:12])
    @pytest.mark.parametrize(
        ("method", "template"),
        [
            ("GET", "/v1/agents/{}"),
            ("PATCH", "/v1/agents/{}"),
            ("DELETE", "/v1/agents/{}"),
            ("DELETE", f"/v1/agents/{ANY_ID}/numbers/{{}}"),
            ("GET", "/v1/numbers/{}"),
            ("DELETE", "/v1/numbers/{}"),
        ],
    )
    async def test_path_ids(self, tenant: Tenant, method: str, template: str, value: str) -> None:
        json = {"name": "x"} if method == "PATCH" else None
        r = await tenant.client.request(method, template.format(value), json=json)
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found"


def _secret_of_unknown_key() -> str:
    return f"sk_live_{secrets.token_urlsafe(32)}"


STATUSES = [200, 401, 401, 401, 401, 401, 404, 400, 400, 400]


async def _requests_carrying(
    client: httpx.AsyncClient, key: str, other: str
) -> list[httpx.Response]:
    """A valid key in every place a caller might put it, and an unknown one."""
    bearer = {"Authorization": f"Bearer {key}"}
    return [
        await client.get("/v1/agents", headers=bearer),
        await client.get("/v1/agents", headers={"Authorization": f"Bearer {other}"}),
        await client.get("/v1/agents", headers={"Authorization": f"Basic {key}"}),
        await client.get("/v1/agents", headers={"X-Api-Key": key}),
        await client.get("/v1/agents", params={"api_key": key}),
        await client.get(f"/v1/agents?api_key={key.replace('_', '%5F')}"),
        await client.get(f"/v1/agents/{key}", headers=bearer),
        await client.get("/v1/agents", params={"starting_after": key}, headers=bearer),
        await client.post("/v1/agents", json={"name": key, "type": "x", "k": key}, headers=bearer),
        await client.post(
            "/v1/agents",
            content=b"{" + key.encode(),
            headers={"Authorization": f"Bearer {other}", "Content-Type": "application/json"},
        ),
    ]


async def _committed_key(
    engine: AsyncEngine, *, revoked: bool = False, expired: bool = False
) -> str:
    sessionmaker = async_sessionmaker(engine)
    created = await create_key(sessionmaker, expires_in_days=1 if expired else None)
    async with sessionmaker() as session, session.begin():
        if revoked:
            await keys_repository.revoke_key(session, created.id)
        if expired:
            await session.execute(
                text("UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE id = :id"),
                {"id": created.id},
            )
    return created.secret


def _without_request_id(response: httpx.Response) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    request_id = response.headers["x-request-id"].encode()
    headers = [(k, v) for k, v in response.headers.items() if k not in ("x-request-id", "date")]
    return response.content.replace(request_id, b"<id>"), tuple(sorted(headers))


class TestKeysNeverLogged:
    async def test_in_process(
        self, tenant: Tenant, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        other = _secret_of_unknown_key()
        responses = await _requests_carrying(client, tenant.key, other)
        assert [r.status_code for r in responses] == STATUSES
        # Every record but the test client's own (httpx logs the URLs it requests).
        server_side = "\n".join(
            caplog.handler.format(record)
            for record in caplog.records
            if not record.name.startswith(("httpx", "httpcore"))
        )
        assert tenant.key not in server_side
        assert other not in server_side

    @pytest.mark.system
    async def test_in_a_server_process_at_debug_level(
        self, database_url: str, engine: AsyncEngine
    ) -> None:
        key = await _committed_key(engine)
        revoked = await _committed_key(engine, revoked=True)
        expired = await _committed_key(engine, expired=True)
        other = _secret_of_unknown_key()
        with tempfile.TemporaryFile() as output:
            with running_server(database_url, log_level="debug", output=output) as base_url:
                async with httpx.AsyncClient(base_url=base_url) as client:
                    responses = await _requests_carrying(client, key, other)
                    refusals = [
                        await client.get("/v1/agents", headers={"Authorization": authorization})
                        for authorization in (
                            f"Bearer {other}",
                            "Bearer sk_live_malformed",
                            f"Bearer {revoked}",
                            f"Bearer {expired}",
                            f"Bearer {key[:-1]}{'A' if key[-1] != 'A' else 'B'}",
                        )
                    ]
                    refusals.append(await client.get("/v1/agents"))
            output.seek(0)
            logs = output.read().decode("utf-8", "replace")
        assert [r.status_code for r in responses] == STATUSES
        # The capture works: the request lines are there (they name the route template, never
        # the path or query the caller sent).
        assert "route=/v1/agents status=401" in logs
        assert "route=/v1/agents/{id} status=404" in logs
        for secret in (key, revoked, expired, other):
            assert secret not in logs
            assert secret[8:] not in logs
        # Over real HTTP too, every refusal is the same bytes, request id aside (test_auth.py
        # checks the same in process).
        assert {r.status_code for r in refusals} == {401}
        assert len({_without_request_id(r) for r in refusals}) == 1


@pytest.mark.system
class TestRawControlBytes:
    """Unencoded control bytes in the request line or a header never reach the app: the HTTP
    parser (httptools, under uvicorn) answers 400 itself, in plain text, and closes."""

    @pytest.mark.parametrize(
        "request_bytes",
        [
            b"GET /v1/agents?starting_after=\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v1/agents/\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_live_\x00\r\n\r\n",
            b"GET /v1/agents HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\x00b\r\n\r\n",
        ],
        ids=["query", "path", "authorization", "request-id"],
    )
    def test_are_a_400_from_the_http_parser(self, live_server: str, request_bytes: bytes) -> None:
        host, port = live_server.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(request_bytes)
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert httpx.get(f"{live_server}/healthz").status_code == 200
