"""POST /v1/agents rejections: 400 naming the field (415 for a non-JSON body), nothing created."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.factories import BUILTIN_TOOL, HTTP_TOOL, error, http_tool, snapshot
from tests.fixtures.tenants import Tenant

LONG = 32_001
BAD_URL = (
    "invalid field webhook_url: must be an absolute http(s) URL such as https://example.com/hook"
)


def nested(levels: int) -> dict[str, Any]:
    """A JSON Schema object ``levels + 2`` objects deep (itself, the chain, the innermost {})."""
    inner: dict[str, Any] = {}
    for _ in range(levels):
        inner = {"x": inner}
    return {"type": "object", "properties": inner}


PARAMETERS_WITH_NUL = {"type": "object", "description": "a\x00b"}
# (body, error) pairs: each body fails validation, naming the offending field.
INVALID_BODIES = [
    pytest.param({"type": "inbound"}, "missing required field: name", id="missing-name"),
    pytest.param({"name": "A"}, "missing required field: type", id="missing-type"),
    pytest.param(
        {"name": "n" * 201, "type": "inbound"},
        "invalid field name: must be at most 200 characters",
        id="name-too-long",
    ),
    pytest.param(
        {"name": "", "type": "inbound"},
        "invalid field name: must not be empty",
        id="empty-name",
    ),
    pytest.param(
        {"name": "   ", "type": "inbound"},
        "invalid field name: must not be blank",
        id="blank-name",
    ),
    pytest.param(
        {"name": "a\x00b", "type": "inbound"},
        "invalid field name: must not contain control characters",
        id="nul-in-name",
    ),
    pytest.param(
        {"name": 5, "type": "inbound"},
        "invalid field name: must be a string",
        id="name-not-string",
    ),
    pytest.param(
        {"name": "A", "type": "sideways"},
        "invalid field type: must be inbound or outbound",
        id="bad-type",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "voicemail_action": "scream"},
        "invalid field voicemail_action: must be hangup or leave_message",
        id="bad-voicemail-action",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "voicemail_action": None},
        "invalid field voicemail_action: must be hangup or leave_message",
        id="null-voicemail-action",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "colour": "red"},
        "unknown field: colour",
        id="unknown-field",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "archived_at": None},
        "unknown field: archived_at",
        id="read-only-field",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "number_ids": ["nope"]},
        "invalid field number_ids.0: must be an id (a UUID)",
        id="number-id-not-uuid",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "language": "en_US"},
        "invalid field language: must be a BCP-47 language tag such as en, en-US or es-419",
        id="language-underscore",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "language": "english"},
        "invalid field language: must be a BCP-47 language tag such as en, en-US or es-419",
        id="language-word",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "returns": {"when": {"date": "string"}}},
        "invalid field returns.when: must be one of string, number or boolean",
        id="returns-nested",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "returns": {"when": "date"}},
        "invalid field returns.when: must be one of string, number or boolean",
        id="returns-bad-type",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "returns": ["confirmed"]},
        "invalid field returns: must be a JSON object",
        id="returns-not-object",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(name=f"t{i}") for i in range(17)]},
        "invalid field tools: must have at most 16 items",
        id="too-many-tools",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [HTTP_TOOL, http_tool(description="again")]},
        "invalid field tools: tool names must be unique within an agent; "
        "lookup_booking appears twice",
        id="duplicate-tool-names",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(name="look up")]},
        "invalid field tools.0.name: must be 1 to 64 letters, digits, _ or -, "
        "such as book_appointment",
        id="tool-name-pattern",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(name="t" * 65)]},
        "invalid field tools.0.name: must be 1 to 64 letters, digits, _ or -, "
        "such as book_appointment",
        id="tool-name-too-long",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(parameters={"type": "string"})]},
        'invalid field tools.0.parameters: must be a JSON Schema object, with "type": "object"',
        id="tool-parameters-not-object-schema",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [{**BUILTIN_TOOL, "parameters": {}}]},
        'invalid field tools.0.parameters: must be a JSON Schema object, with "type": "object"',
        id="builtin-tool-parameters-without-type",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(type="grpc")]},
        "invalid field tools.0.type: must be http or builtin",
        id="tool-bad-type",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(policy="write")]},
        "invalid field tools.0.policy: must be read or confirm_first_write",
        id="tool-bad-policy",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(timeout_ms="5000")]},
        "invalid field tools.0.timeout_ms: must be a whole number",
        id="tool-timeout-as-string",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(timeout_ms=50)]},
        "invalid field tools.0.timeout_ms: must be at least 100",
        id="tool-timeout-too-small",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(secret="x")]},
        "unknown field: tools.0.secret",
        id="tool-unknown-field",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "webhook_url": "/hooks/callingbox"},
        BAD_URL,
        id="webhook-url-relative",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "webhook_url": "ftp://files.example.com/hook"},
        BAD_URL,
        id="webhook-url-ftp",
    ),
    *(
        pytest.param({"name": "A", "type": "inbound", "webhook_url": url}, BAD_URL, id=name)
        for name, url in [
            ("webhook-url-no-slashes", "http:example.com"),
            ("webhook-url-backslashes", "http:\\\\example.com"),
            ("webhook-url-leading-space", " https://example.com/hook"),
            ("webhook-url-inner-space", "https://example.com/a hook"),
            ("webhook-url-no-host", "https://"),
        ]
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(url="https:example.com/t")]},
        "invalid field tools.0.url: must be an absolute http(s) URL such as "
        "https://example.com/hook",
        id="tool-url-no-slashes",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "persona": "p" * LONG},
        "invalid field persona: must be at most 32000 characters",
        id="persona-too-long",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "instructions": "i" * LONG},
        "invalid field instructions: must be at most 32000 characters",
        id="instructions-too-long",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "voice": "v" * 101},
        "invalid field voice: must be at most 100 characters",
        id="voice-too-long",
    ),
    pytest.param(
        [{"name": "A", "type": "inbound"}], "request body must be a JSON object", id="list"
    ),
    pytest.param("A", "request body must be a JSON object", id="string"),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(parameters=nested(31))]},
        "invalid field tools.0.parameters: must not nest deeper than 32 levels",
        id="parameters-33-levels",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(parameters=nested(600))]},
        "invalid field tools.0.parameters: must not nest deeper than 32 levels",
        id="parameters-600-levels",
    ),
    pytest.param(
        {"name": "A", "type": "inbound", "tools": [http_tool(parameters=PARAMETERS_WITH_NUL)]},
        "invalid field tools.0.parameters: must not contain NUL characters",
        id="nul-in-parameters",
    ),
    pytest.param(
        {
            "name": "A",
            "type": "inbound",
            "tools": [http_tool(parameters={"type": "object", "a\x00": 1})],
        },
        "invalid field tools.0.parameters: must not contain NUL characters",
        id="nul-in-parameter-name",
    ),
]


class TestCreateAgentValidation:
    @pytest.mark.parametrize(("body", "message"), INVALID_BODIES)
    async def test_invalid_body(self, tenant: Tenant, body: Any, message: str) -> None:
        r = await tenant.client.post("/v1/agents", json=body)

        assert r.status_code == 400
        assert r.json() == error(r, message)
        assert (await snapshot(tenant))["agents"] == {"data": [], "has_more": False}

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param(b"null", "request body must be a JSON object", id="null"),
            pytest.param(b'{"name": "A", "type": ', "request body is not valid JSON", id="bad"),
            pytest.param(b"", "request body is required", id="empty"),
            pytest.param(
                b'{"name": "A", "type": "inbound", "tools": [{"type": "http", "name": "t", '
                b'"description": "d", "policy": "read", "url": "https://x.example/t", '
                b'"parameters": {"type": "object", "minimum": NaN}}]}',
                "invalid field tools.0.parameters: must not contain NaN or Infinity",
                id="nan-in-tool-parameters",
            ),
            pytest.param(
                b'{"name": "A", "type": "inbound", "tools": [{"type": "http", "name": "t", '
                b'"description": "d", "policy": "read", "url": "https://x.example/t", '
                b'"parameters": {"type": "object", "\\ud800": "\\udc00x"}}]}',
                "invalid field tools.0.parameters: must not contain unpaired surrogates",
                id="lone-surrogates-in-tool-parameters",
            ),
            pytest.param(
                b'{"name": "A", "type": "inbound", "tools": [{"type": "builtin", "name": "t", '
                b'"description": "d", "policy": "read", "builtin": "end_call", '
                b'"parameters": {"type": "object"}, "config": {"say": "\\udfff"}}]}',
                "invalid field tools.0.config: must not contain unpaired surrogates",
                id="lone-surrogate-in-builtin-config",
            ),
            pytest.param(
                b'{"name": "A", "type": "inbound", "tools": [{"type": "http", "name": "t", '
                b'"description": "d", "policy": "read", "url": "https://x.example/t", '
                b'"parameters": {"type": "object", "maximum": Infinity}}]}',
                "invalid field tools.0.parameters: must not contain NaN or Infinity",
                id="infinity-in-tool-parameters",
            ),
        ],
    )
    async def test_invalid_raw_body(self, tenant: Tenant, content: bytes, message: str) -> None:
        r = await tenant.client.post(
            "/v1/agents", content=content, headers={"content-type": "application/json"}
        )

        assert r.status_code == 400
        assert r.json() == error(r, message)
        assert (await snapshot(tenant))["agents"] == {"data": [], "has_more": False}

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com",
            "http://example.com:8080/hooks/callingbox?token=abc#x",
            "HTTPS://Example.COM/Hook",
            "https://user:secret@example.com/hook",
        ],
    )
    async def test_absolute_urls_are_stored_as_sent(self, tenant: Tenant, url: str) -> None:
        r = await tenant.client.post(
            "/v1/agents", json={"name": "A", "type": "inbound", "webhook_url": url}
        )

        assert r.status_code == 201
        assert r.json()["webhook_url"] == url

    async def test_parameters_32_levels_deep_are_accepted(self, tenant: Tenant) -> None:
        tool = http_tool(parameters=nested(30))
        r = await tenant.client.post(
            "/v1/agents", json={"name": "A", "type": "inbound", "tools": [tool]}
        )

        assert r.status_code == 201
        assert r.json()["tools"] == [tool]

    async def test_body_that_is_not_json(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/agents",
            content=b'{"name": "A", "type": "inbound"}',
            headers={"content-type": "text/plain"},
        )

        assert r.status_code == 415
        assert r.json() == error(
            r,
            "request body must be sent as Content-Type: application/json",
            "unsupported_media_type",
        )
        assert (await snapshot(tenant))["agents"] == {"data": [], "has_more": False}
