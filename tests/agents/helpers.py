"""Small helpers shared by the agent tests: buying numbers, creating agents, expected bodies."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Tenant

# A valid tool of each kind, every optional field set.
HTTP_TOOL: dict[str, Any] = {
    "type": "http",
    "name": "lookup_booking",
    "description": "Find the caller's booking.\nUse before confirming.",
    "policy": "read",
    "url": "https://api.example.com/bookings",
    "parameters": {
        "type": "object",
        "properties": {"phone": {"type": "string"}},
        "required": ["phone"],
    },
    "headers": {"X-Api-Key": "abc123"},
    "timeout_ms": 5000,
}
BUILTIN_TOOL: dict[str, Any] = {
    "type": "builtin",
    "name": "end-call_2",
    "description": "Hang up politely.",
    "policy": "confirm_first_write",
    "builtin": "end_call",
    "parameters": {"type": "object"},
    "config": {"farewell": "Goodbye!", "delay_ms": 500, "nested": {"ok": True}},
}


def http_tool(**changes: Any) -> dict[str, Any]:
    return {**HTTP_TOOL, **changes}


TIMESTAMP_PATTERN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class _Timestamp:
    """Equal to any RFC 3339 UTC timestamp with microseconds and a Z, as the API writes them."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and TIMESTAMP_PATTERN.fullmatch(other) is not None

    def __repr__(self) -> str:
        return "<timestamp>"


class _Uuid:
    """Equal to any UUID in its canonical lowercase form."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return False
        try:
            return str(uuid.UUID(other)) == other
        except ValueError:
            return False

    def __repr__(self) -> str:
        return "<uuid>"


TIMESTAMP: Any = _Timestamp()
UUID: Any = _Uuid()


def random_id() -> str:
    return str(uuid.uuid4())


def error(response: httpx.Response, message: str, code: str = "invalid_request") -> dict[str, str]:
    """The error body the API must send, with this response's request id."""
    return {"error": message, "code": code, "request_id": response.headers["x-request-id"]}


def agent_not_found(response: httpx.Response, agent_id: str) -> dict[str, str]:
    return error(response, f"agent {agent_id} not found", "not_found")


def agent_archived(response: httpx.Response, agent_id: str) -> dict[str, str]:
    return error(response, f"agent {agent_id} is archived", "agent_archived")


def number_in_use(response: httpx.Response, number_id: str, holder_id: str) -> dict[str, str]:
    message = f"number {number_id} already answers for inbound agent {holder_id}"
    return error(response, message, "number_in_use")


def phone(line: int, area_code: str = "415") -> str:
    return f"+1{area_code}55501{line:02d}"


async def buy_number(tenant: Tenant, line: int = 0, area_code: str = "415") -> dict[str, Any]:
    """Buy the sandbox number ``+1 <area_code> 555 01<line>``; returns the Number."""
    r = await tenant.client.post(
        "/v1/numbers/purchase", json={"phone_number": phone(line, area_code)}
    )
    assert r.status_code == 201, r.text
    number: dict[str, Any] = r.json()
    return number


async def release_number(tenant: Tenant, number_id: str) -> None:
    r = await tenant.client.delete(f"/v1/numbers/{number_id}")
    assert r.status_code == 200, r.text


async def create_agent(
    tenant: Tenant, name: str = "Front desk", type: str = "inbound", **fields: Any
) -> dict[str, Any]:
    r = await tenant.client.post("/v1/agents", json={"name": name, "type": type, **fields})
    assert r.status_code == 201, r.text
    agent: dict[str, Any] = r.json()
    return agent


async def get_agent(tenant: Tenant, agent_id: str) -> dict[str, Any]:
    r = await tenant.client.get(f"/v1/agents/{agent_id}")
    assert r.status_code == 200, r.text
    agent: dict[str, Any] = r.json()
    return agent


async def get_number(tenant: Tenant, number_id: str) -> dict[str, Any]:
    r = await tenant.client.get(f"/v1/numbers/{number_id}")
    assert r.status_code == 200, r.text
    number: dict[str, Any] = r.json()
    return number


async def post_attach(tenant: Tenant, agent_id: str, body: Any) -> httpx.Response:
    """POST /v1/agents/{id}/numbers with any body, for tests of what comes back."""
    return await tenant.client.post(f"/v1/agents/{agent_id}/numbers", json=body)


async def delete_attachment(tenant: Tenant, agent_id: str, number_id: str) -> httpx.Response:
    """DELETE /v1/agents/{id}/numbers/{number_id}, for tests of what comes back."""
    return await tenant.client.delete(f"/v1/agents/{agent_id}/numbers/{number_id}")


async def attach(
    tenant: Tenant, agent_id: str, number_id: str, *, set_as_primary: bool | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"number_id": number_id}
    if set_as_primary is not None:
        body["set_as_primary"] = set_as_primary
    r = await tenant.client.post(f"/v1/agents/{agent_id}/numbers", json=body)
    assert r.status_code == 200, r.text
    agent: dict[str, Any] = r.json()
    return agent


async def archive(tenant: Tenant, agent_id: str) -> dict[str, Any]:
    r = await tenant.client.delete(f"/v1/agents/{agent_id}")
    assert r.status_code == 200, r.text
    agent: dict[str, Any] = r.json()
    return agent


async def snapshot(tenant: Tenant) -> dict[str, Any]:
    """Every agent (archived too) and every number of the org, as the API shows them."""
    agents = await tenant.client.get(
        "/v1/agents", params={"include_archived": "true", "limit": 100}
    )
    active = await tenant.client.get("/v1/numbers", params={"status": "active", "limit": 100})
    released = await tenant.client.get("/v1/numbers", params={"status": "released", "limit": 100})
    assert agents.status_code == active.status_code == released.status_code == 200
    return {"agents": agents.json(), "active": active.json(), "released": released.json()}


def with_agents(
    number: dict[str, Any], inbound: str | None = None, outbound: list[str] | None = None
) -> dict[str, Any]:
    """A Number as it should read once these agents are attached to it."""
    return {**number, "inbound_agent_id": inbound, "outbound_agent_ids": outbound or []}


def agent_body(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """The Agent the API should return: defaults, overridden by ``fields``."""
    return {
        "id": UUID,
        "org_id": str(tenant.org_id),
        "user_id": str(tenant.key_id),
        "name": "Front desk",
        "type": "inbound",
        "persona": None,
        "instructions": None,
        "voice": None,
        "language": None,
        "returns": None,
        "tools": None,
        "webhook_url": None,
        "voicemail_action": "hangup",
        "primary_number_id": None,
        "archived_at": None,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "numbers": [],
        **fields,
    }


# Ids that name no agent: a well-formed UUID nobody has, and a path id that is not a UUID at all.
MISSING_AGENT_IDS = [
    pytest.param("5f0c6b1e-0000-4000-8000-000000000000", id="unknown-uuid"),
    pytest.param("abc", id="not-a-uuid"),
]
