"""PATCH /v1/agents/{id}: partial updates, clearing with null, read-only fields, archived agents."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.factories import (
    MISSING_AGENT_IDS,
    agent_archived,
    agent_body,
    agent_not_found,
    archive,
    buy_number,
    create_agent,
    error,
    get_agent,
    with_agents,
)
from tests.fixtures.tenants import Tenant

TOOL: dict[str, Any] = {
    "type": "builtin",
    "name": "end_call",
    "description": "Hang up.",
    "policy": "read",
    "builtin": "end_call",
    "parameters": {"type": "object"},
}
CONFIGURED: dict[str, Any] = {
    "persona": "You are Sam.",
    "instructions": "Confirm the booking.",
    "voice": "alloy",
    "language": "en-US",
    "returns": {"confirmed": "boolean", "notes": "string"},
    "tools": [TOOL],
    "webhook_url": "https://hooks.example.com/a",
    "voicemail_action": "leave_message",
}
NULLABLE = ("persona", "instructions", "voice", "language", "returns", "tools", "webhook_url")


async def _patch(tenant: Tenant, agent_id: str, body: Any) -> Any:
    return await tenant.client.patch(f"/v1/agents/{agent_id}", json=body)


class TestUpdateAgent:
    async def test_only_present_fields_change(self, tenant: Tenant) -> None:
        before = await create_agent(tenant, **CONFIGURED)

        r = await _patch(tenant, before["id"], {"instructions": "Reschedule the booking."})

        assert r.status_code == 200
        assert r.json() == {
            **before,
            "instructions": "Reschedule the booking.",
            "updated_at": r.json()["updated_at"],
        }
        assert r.json()["updated_at"] > before["updated_at"]
        assert r.json()["created_at"] == before["created_at"]
        assert await get_agent(tenant, before["id"]) == r.json()

    async def test_every_writable_field(self, tenant: Tenant) -> None:
        before = await create_agent(tenant, "Old name")
        changes = {"name": "New name", **CONFIGURED}

        r = await _patch(tenant, before["id"], changes)

        assert r.status_code == 200
        assert r.json() == agent_body(
            tenant, id=before["id"], created_at=before["created_at"], **changes
        )
        assert list(r.json()["returns"]) == ["confirmed", "notes"]
        assert r.json()["updated_at"] > before["updated_at"]

    async def test_explicit_null_clears_nullable_fields(self, tenant: Tenant) -> None:
        before = await create_agent(tenant, **CONFIGURED)

        r = await _patch(tenant, before["id"], dict.fromkeys(NULLABLE))

        assert r.status_code == 200
        assert r.json() == {
            **before,
            **dict.fromkeys(NULLABLE),
            "updated_at": r.json()["updated_at"],
        }
        assert r.json()["updated_at"] > before["updated_at"]

    @pytest.mark.parametrize("field", NULLABLE)
    async def test_null_clears_one_field(self, tenant: Tenant, field: str) -> None:
        before = await create_agent(tenant, **CONFIGURED)

        r = await _patch(tenant, before["id"], {field: None})

        assert r.status_code == 200
        assert r.json() == {**before, field: None, "updated_at": r.json()["updated_at"]}

    async def test_updated_at_advances_on_each_change(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)

        first = await _patch(tenant, agent["id"], {"name": "One"})
        second = await _patch(tenant, agent["id"], {"name": "Two"})

        assert first.status_code == second.status_code == 200
        assert agent["updated_at"] < first.json()["updated_at"] < second.json()["updated_at"]
        assert second.json()["created_at"] == agent["created_at"]

    async def test_returns_and_tools_are_replaced_not_merged(self, tenant: Tenant) -> None:
        before = await create_agent(tenant, **CONFIGURED)
        tool = {**TOOL, "name": "transfer", "builtin": "transfer_call"}

        r = await _patch(tenant, before["id"], {"returns": {"score": "number"}, "tools": [tool]})

        assert r.status_code == 200
        assert r.json()["returns"] == {"score": "number"}
        assert r.json()["tools"] == [tool]

    @pytest.mark.parametrize("field", ["name", "voicemail_action"])
    async def test_null_for_a_required_field(self, tenant: Tenant, field: str) -> None:
        before = await create_agent(tenant)

        r = await _patch(tenant, before["id"], {field: None})

        assert r.status_code == 400
        assert r.json() == error(r, f"invalid field {field}: must not be null")
        assert await get_agent(tenant, before["id"]) == before

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("type", "outbound"),
            ("number_ids", []),
            ("id", "00000000-0000-4000-8000-000000000000"),
            ("org_id", "00000000-0000-4000-8000-000000000000"),
            ("user_id", "someone-else"),
            ("created_at", "2020-01-01T00:00:00.000000Z"),
            ("updated_at", "2020-01-01T00:00:00.000000Z"),
            ("archived_at", None),
            ("numbers", []),
        ],
    )
    async def test_read_only_field(self, tenant: Tenant, field: str, value: Any) -> None:
        before = await create_agent(tenant)

        r = await _patch(tenant, before["id"], {"name": "Renamed", field: value})

        assert r.status_code == 400
        assert r.json() == error(r, f"{field} is read-only and cannot be updated")
        assert await get_agent(tenant, before["id"]) == before

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            pytest.param({"colour": "red"}, "unknown field: colour", id="unknown-field"),
            pytest.param(
                {"name": ""},
                "invalid field name: must not be empty",
                id="empty-name",
            ),
            pytest.param(
                {"name": "n" * 201},
                "invalid field name: must be at most 200 characters",
                id="name-too-long",
            ),
            pytest.param(
                {"voicemail_action": "scream"},
                "invalid field voicemail_action: must be hangup or leave_message",
                id="bad-voicemail-action",
            ),
            pytest.param(
                {"language": "en_US"},
                "invalid field language: must be a BCP-47 language tag such as en, en-US or es-419",
                id="bad-language",
            ),
            pytest.param(
                {"webhook_url": "ftp://files.example.com/hook"},
                "invalid field webhook_url: must be an absolute http(s) URL such as "
                "https://example.com/hook",
                id="bad-webhook-url",
            ),
            pytest.param(
                {"tools": [TOOL, TOOL]},
                "invalid field tools: tool names must be unique within an agent; "
                "end_call appears twice",
                id="duplicate-tools",
            ),
            pytest.param(
                {"returns": {"a": {"b": "string"}}},
                "invalid field returns.a: must be one of string, number or boolean",
                id="nested-returns",
            ),
            pytest.param(
                {"primary_number_id": "nope"},
                "invalid field primary_number_id: must be an id (a UUID)",
                id="primary-not-uuid",
            ),
            pytest.param(["name"], "request body must be a JSON object", id="not-an-object"),
        ],
    )
    async def test_invalid_body_changes_nothing(
        self, tenant: Tenant, body: Any, message: str
    ) -> None:
        before = await create_agent(tenant, **CONFIGURED)
        if isinstance(body, dict):
            body = {"name": "Renamed", "persona": None, **body}

        r = await _patch(tenant, before["id"], body)

        assert r.status_code == 400
        assert r.json() == error(r, message)
        assert await get_agent(tenant, before["id"]) == before

    async def test_empty_body_changes_nothing(self, tenant: Tenant) -> None:
        before = await create_agent(tenant)

        r = await _patch(tenant, before["id"], {})

        assert r.status_code == 200
        assert r.json() == before

    async def test_primary_number_set_to_an_attached_number(self, tenant: Tenant) -> None:
        first = await buy_number(tenant, 1)
        second = await buy_number(tenant, 2)
        before = await create_agent(tenant, number_ids=[first["id"], second["id"]])

        r = await _patch(tenant, before["id"], {"primary_number_id": second["id"]})

        assert r.status_code == 200
        assert r.json() == {
            **before,
            "primary_number_id": second["id"],
            "updated_at": r.json()["updated_at"],
        }
        assert r.json()["updated_at"] > before["updated_at"]

    async def test_primary_number_cleared_with_null(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        before = await create_agent(tenant, number_ids=[number["id"]])

        r = await _patch(tenant, before["id"], {"primary_number_id": None})

        assert r.status_code == 200
        assert r.json() == {
            **before,
            "primary_number_id": None,
            "updated_at": r.json()["updated_at"],
        }
        assert r.json()["numbers"] == [with_agents(number, inbound=before["id"])]

    async def test_primary_number_not_attached(self, tenant: Tenant) -> None:
        attached = await buy_number(tenant, 1)
        other = await buy_number(tenant, 2)
        before = await create_agent(tenant, number_ids=[attached["id"]])

        r = await _patch(
            tenant, before["id"], {"name": "Renamed", "primary_number_id": other["id"]}
        )

        assert r.status_code == 400
        assert r.json() == error(r, f"number {other['id']} is not attached to agent {before['id']}")
        assert await get_agent(tenant, before["id"]) == before

    async def test_primary_number_of_another_agent(self, tenant: Tenant) -> None:
        number = await buy_number(tenant)
        await create_agent(tenant, "Holder", "outbound", number_ids=[number["id"]])
        before = await create_agent(tenant, "Dialer", "outbound")

        r = await _patch(tenant, before["id"], {"primary_number_id": number["id"]})

        assert r.status_code == 400
        assert r.json() == error(
            r, f"number {number['id']} is not attached to agent {before['id']}"
        )
        assert await get_agent(tenant, before["id"]) == before

    async def test_archived_agent(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        archived = await archive(tenant, agent["id"])

        r = await _patch(tenant, agent["id"], {"name": "Revived"})

        assert r.status_code == 409
        assert r.json() == agent_archived(r, agent["id"])
        assert await get_agent(tenant, agent["id"]) == archived

    async def test_other_orgs_agent(self, tenant: Tenant, other_tenant: Tenant) -> None:
        foreign = await create_agent(other_tenant)

        r = await _patch(tenant, foreign["id"], {"name": "Hijacked"})

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, foreign["id"])
        assert await get_agent(other_tenant, foreign["id"]) == foreign

    @pytest.mark.parametrize("agent_id", MISSING_AGENT_IDS)
    async def test_missing_agent(self, tenant: Tenant, agent_id: str) -> None:
        r = await _patch(tenant, agent_id, {"name": "Ghost"})

        assert r.status_code == 404
        assert r.json() == agent_not_found(r, agent_id)
