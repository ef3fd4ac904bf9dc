"""PostgreSQL renders agents and numbers (core.db.wire): the bytes must be exactly what the wire
schemas serialize, for text that stresses JSON escaping and numbers that stress formatting."""

from __future__ import annotations

from typing import Any

import pydantic_core

from callingbox_server.core.pagination import Page
from callingbox_server.domains.agents.schemas import Agent
from callingbox_server.domains.numbers.schemas import Number
from tests.fixtures.factories import buy_number
from tests.fixtures.tenants import Tenant

TRICKY_TEXT = 'Ünïcödé “quotes” \\ back\\slash "dq" </script> emoji 📞\ttab\nline\r\u2028 x'
TOOLS: list[dict[str, Any]] = [
    {
        "type": "builtin",
        "name": "end_call",
        "description": TRICKY_TEXT,
        "policy": "confirm_first_write",
        "builtin": "end_call",
        "parameters": {"type": "object", "properties": {"x": {"pattern": "^\\+1[0-9]{10}$"}}},
        "config": {"delay": 0.5, "tiny": 1e-07, "big": 12345678901234567890, "none": None},
    }
]


def _as_pydantic_writes(model: type[Any], body: bytes) -> bytes:
    return pydantic_core.to_json(model.model_validate_json(body))


class TestAgentBytes:
    async def test_one_agent_is_what_the_schema_serializes(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        created = await tenant.client.post(
            "/v1/agents",
            json={
                "name": TRICKY_TEXT.replace("\t", " ").replace("\n", " ").replace("\r", " "),
                "type": "outbound",
                "instructions": TRICKY_TEXT,
                "returns": {"ok": "boolean", "note": "string"},
                "tools": TOOLS,
                "number_ids": [number["id"]],
            },
        )
        assert created.status_code == 201, created.text
        fetched = await tenant.client.get(f"/v1/agents/{created.json()['id']}")

        assert fetched.content == _as_pydantic_writes(Agent, fetched.content)
        assert created.content == fetched.content
        assert fetched.json()["tools"][0]["config"]["big"] == 12345678901234567890
        assert fetched.json()["instructions"] == TRICKY_TEXT

    async def test_a_page_is_what_the_schema_serializes(self, tenant: Tenant) -> None:
        for name in ("first", "second"):
            await tenant.client.post("/v1/agents", json={"name": name, "type": "inbound"})
        page = await tenant.client.get("/v1/agents", params={"limit": 1})

        assert page.content == _as_pydantic_writes(Page[Agent], page.content)
        assert page.json()["has_more"] is True

    async def test_an_empty_page(self, tenant: Tenant) -> None:
        page = await tenant.client.get("/v1/agents")

        assert page.content == b'{"data":[],"has_more":false}'


class TestNumberBytes:
    async def test_a_number_and_its_page(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        await tenant.client.post(
            "/v1/agents", json={"name": "d", "type": "outbound", "number_ids": [number["id"]]}
        )
        fetched = await tenant.client.get(f"/v1/numbers/{number['id']}")
        page = await tenant.client.get("/v1/numbers")

        assert fetched.content == _as_pydantic_writes(Number, fetched.content)
        assert page.content == _as_pydantic_writes(Page[Number], page.content)
        assert len(fetched.json()["outbound_agent_ids"]) == 1
