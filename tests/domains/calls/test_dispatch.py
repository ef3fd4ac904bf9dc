"""POST /v1/calls: dispatch from an agent (rule 11) and legacy dispatch (rule 12)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domains.calls.calls import (
    DEFAULT_PERSONA,
    destination,
    dispatch,
    get_call,
    outbound_agent,
    queued_call,
)
from tests.domains.calls.conftest import Runner
from tests.fixtures.factories import (
    BUILTIN_TOOL,
    HTTP_TOOL,
    archive,
    attach,
    buy_number,
    create_agent,
    error,
    random_id,
)
from tests.fixtures.tenants import Tenant

TO = destination("0123")


class TestDispatchFromAgent:
    async def test_snapshots_the_agent(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(
            tenant,
            persona="You are Ada, the clinic's assistant.",
            instructions="Remind the patient of their appointment.",
            language="en-US",
            returns={"confirmed": "boolean", "notes": "string"},
            tools=[HTTP_TOOL],
            webhook_url="https://agent.example.com/hook",
            voicemail_action="leave_message",
        )
        r = await tenant.client.post(
            "/v1/calls",
            json={
                "agent_id": agent["id"],
                "to": TO,
                "context": {"patient": {"name": "Ada"}},
                "metadata": {"crm_id": "42"},
            },
        )
        assert r.status_code == 201, r.text
        assert r.headers["etag"]
        assert r.json() == queued_call(
            agent_id=agent["id"],
            from_number=agent["numbers"][0]["e164"],
            persona="You are Ada, the clinic's assistant.",
            instructions="Remind the patient of their appointment.",
            prompt="You are Ada, the clinic's assistant.\n\n"
            "Remind the patient of their appointment.",
            context={"patient": {"name": "Ada"}},
            returns={"confirmed": "boolean", "notes": "string"},
            result={"confirmed": None, "notes": None},
            language="en-US",
            tools=[HTTP_TOOL],
            voicemail_action="leave_message",
            webhook_url="https://agent.example.com/hook",
            metadata={"crm_id": "42"},
        )
        assert r.json()["created_at"] == r.json()["updated_at"]
        assert await runner.events(r.json()["id"]) == ["call.queued"]

    async def test_per_call_fields_win(self, tenant: Tenant) -> None:
        agent = await outbound_agent(
            tenant, instructions="Agent task.", webhook_url="https://agent.example.com/hook"
        )
        second = await buy_number(tenant, 1)
        await attach(tenant, agent["id"], second["id"])
        call = await dispatch(
            tenant,
            agent_id=agent["id"],
            to=TO,
            from_number=second["e164"],
            instructions="Call task.",
            webhook_url="https://call.example.com/hook",
        )
        assert call["from_number"] == second["e164"]
        assert call["instructions"] == "Call task."
        assert call["prompt"] == f"{DEFAULT_PERSONA}\n\nCall task."
        assert call["webhook_url"] == "https://call.example.com/hook"

    async def test_later_agent_changes_touch_no_call(self, tenant: Tenant) -> None:
        agent = await outbound_agent(tenant, instructions="Before.", returns={"a": "number"})
        call = await dispatch(tenant, agent_id=agent["id"], to=TO)
        r = await tenant.client.patch(
            f"/v1/agents/{agent['id']}", json={"instructions": "After.", "returns": None}
        )
        assert r.status_code == 200, r.text
        await archive(tenant, agent["id"])
        assert await get_call(tenant, call["id"]) == call

    async def test_the_event_carries_the_call(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(tenant)
        call = await dispatch(tenant, agent_id=agent["id"], to=TO)
        assert await runner.event_data(call["id"]) == [{"call": call}]


class TestDispatchFromAgentErrors:
    async def test_unknown_agent_is_404(self, tenant: Tenant) -> None:
        missing = random_id()
        r = await tenant.client.post("/v1/calls", json={"agent_id": missing, "to": TO})
        assert r.status_code == 404
        assert r.json() == error(r, f"agent {missing} not found", "not_found")

    async def test_another_orgs_agent_is_404(self, tenant: Tenant, other_tenant: Tenant) -> None:
        foreign = await outbound_agent(other_tenant)
        r = await tenant.client.post("/v1/calls", json={"agent_id": foreign["id"], "to": TO})
        assert r.status_code == 404
        assert r.json() == error(r, f"agent {foreign['id']} not found", "not_found")

    async def test_inbound_agent_is_400(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant, type="inbound")
        r = await tenant.client.post("/v1/calls", json={"agent_id": agent["id"], "to": TO})
        assert r.status_code == 400
        message = (
            f"agent {agent['id']} is an inbound agent; calls are dispatched from outbound agents"
        )
        assert r.json() == error(r, message)

    async def test_archived_agent_is_400(self, tenant: Tenant) -> None:
        agent = await outbound_agent(tenant)
        await archive(tenant, agent["id"])
        r = await tenant.client.post("/v1/calls", json={"agent_id": agent["id"], "to": TO})
        assert r.status_code == 400
        message = f"agent {agent['id']} is archived; calls need an agent that is not"
        assert r.json() == error(r, message)

    async def test_from_number_not_attached_is_400(self, tenant: Tenant) -> None:
        agent = await outbound_agent(tenant)
        loose = await buy_number(tenant, 1)
        r = await tenant.client.post(
            "/v1/calls", json={"agent_id": agent["id"], "to": TO, "from_number": loose["e164"]}
        )
        assert r.status_code == 400
        message = (
            f"invalid field from_number: {loose['e164']} is not attached to agent {agent['id']}"
        )
        assert r.json() == error(r, message)

    async def test_no_primary_and_no_from_number_is_400(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant, type="outbound")
        r = await tenant.client.post("/v1/calls", json={"agent_id": agent["id"], "to": TO})
        assert r.status_code == 400
        message = (
            f"agent {agent['id']} has no primary number: attach a number to it, or give from_number"
        )
        assert r.json() == error(r, message)

    @pytest.mark.parametrize(("field", "value"), [("persona", "Someone else."), ("voice", "alloy")])
    async def test_persona_and_voice_are_400(self, tenant: Tenant, field: str, value: Any) -> None:
        agent = await outbound_agent(tenant)
        r = await tenant.client.post(
            "/v1/calls", json={"agent_id": agent["id"], "to": TO, field: value}
        )
        assert r.status_code == 400
        message = (
            f"{field} belongs to the agent and cannot be set per call; change the agent instead"
        )
        assert r.json() == error(r, message)

    async def test_agent_fields_of_an_unknown_agent_are_404(self, tenant: Tenant) -> None:
        missing = random_id()
        r = await tenant.client.post(
            "/v1/calls", json={"agent_id": missing, "to": TO, "returns": {"a": "string"}}
        )
        assert r.status_code == 404

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("language", "en-US"),
            ("returns", {"a": "string"}),
            ("tools", [BUILTIN_TOOL]),
            ("voicemail_action", "hangup"),
        ],
    )
    async def test_agent_fields_are_400(self, tenant: Tenant, field: str, value: Any) -> None:
        agent = await outbound_agent(tenant)
        r = await tenant.client.post(
            "/v1/calls", json={"agent_id": agent["id"], "to": TO, field: value}
        )
        assert r.status_code == 400
        message = (
            f"{field} belongs to the agent and cannot be set per call when agent_id is given; "
            "change the agent instead"
        )
        assert r.json() == error(r, message)

    async def test_prompt_with_agent_is_400(self, tenant: Tenant) -> None:
        agent = await outbound_agent(tenant)
        r = await tenant.client.post(
            "/v1/calls", json={"agent_id": agent["id"], "to": TO, "prompt": "Hi"}
        )
        assert r.status_code == 400
        message = "prompt is for calls without agent_id; with an agent, send instructions"
        assert r.json() == error(r, message)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({}, "missing required field: to"),
            (
                {"to": "4155550123"},
                "invalid field to: must be a US number in E.164 form, such as +14155550123",
            ),
            (
                {"to": "+442071838750"},
                "invalid field to: must be a US number in E.164 form, such as +14155550123",
            ),
            (
                {"to": TO, "from_number": "+1415"},
                "invalid field from_number: must be a US number in E.164 form, "
                "such as +14155550123",
            ),
            ({"to": TO, "context": []}, "invalid field context: must be a JSON object"),
            ({"to": TO, "metadata": {"a": 1}}, "invalid field metadata.a: must be a string"),
            (
                {"to": TO, "metadata": {f"k{i}": "v" for i in range(51)}},
                "invalid field metadata: must have at most 50 entries",
            ),
            (
                {"to": TO, "webhook_url": "ftp://x"},
                "invalid field webhook_url: must be an absolute http(s) URL such as "
                "https://example.com/hook",
            ),
            ({"to": TO, "tos": TO}, "unknown field: tos (did you mean to?)"),
        ],
    )
    async def test_bad_fields_are_400(
        self, tenant: Tenant, runner: Runner, body: dict[str, Any], message: str
    ) -> None:
        agent = await outbound_agent(tenant)
        r = await tenant.client.post("/v1/calls", json={"agent_id": agent["id"], **body})
        assert r.status_code == 400
        assert r.json() == error(r, message)
        r = await tenant.client.get("/v1/calls")
        assert r.json() == {"data": [], "has_more": False}


class TestLegacyDispatch:
    async def test_defaults(self, tenant: Tenant) -> None:
        oldest = await buy_number(tenant, 0)
        await buy_number(tenant, 1)
        call = await dispatch(tenant, to=TO)
        assert call == queued_call(
            from_number=oldest["e164"],
            instructions="Hello from CallingBox.",
            prompt=f"{DEFAULT_PERSONA}\n\nHello from CallingBox.",
            language="en",
        )

    async def test_every_field(self, tenant: Tenant) -> None:
        await buy_number(tenant, 0)
        number = await buy_number(tenant, 1)
        call = await dispatch(
            tenant,
            to=TO,
            prompt="Ask about the order.",
            context={"order": 7},
            returns={"delivered": "boolean", "count": "number"},
            language="es",
            from_number=number["e164"],
            webhook_url="https://example.com/hook",
            voicemail_action="leave_message",
            tools=[BUILTIN_TOOL],
            metadata={"k": "v"},
        )
        assert call == queued_call(
            from_number=number["e164"],
            instructions="Ask about the order.",
            prompt=f"{DEFAULT_PERSONA}\n\nAsk about the order.",
            context={"order": 7},
            returns={"delivered": "boolean", "count": "number"},
            result={"delivered": None, "count": None},
            language="es",
            webhook_url="https://example.com/hook",
            voicemail_action="leave_message",
            tools=[BUILTIN_TOOL],
            metadata={"k": "v"},
        )

    async def test_no_number_is_400(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/calls", json={"to": TO})
        assert r.status_code == 400
        message = (
            "your organization has no active number to call from: buy one "
            "(POST /v1/numbers/purchase), then dispatch again"
        )
        assert r.json() == error(r, message)

    async def test_from_number_not_the_orgs_is_400(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        await buy_number(tenant, 0)
        foreign = await buy_number(other_tenant, 0)
        released = await buy_number(tenant, 1)
        r = await tenant.client.delete(f"/v1/numbers/{released['id']}")
        assert r.status_code == 200
        for e164 in (foreign["e164"], released["e164"]):
            r = await tenant.client.post("/v1/calls", json={"to": TO, "from_number": e164})
            assert r.status_code == 400
            message = (
                f"invalid field from_number: {e164} is not an active number of your organization"
            )
            assert r.json() == error(r, message)

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"language": "fr"}, "invalid field language: must be en or es"),
            (
                {"returns": {"a": "date"}},
                "invalid field returns.a: must be one of string, number or boolean",
            ),
            (
                {"voicemail_action": "beep"},
                "invalid field voicemail_action: must be hangup or leave_message",
            ),
            ({"tools": [{"type": "http"}]}, "missing required field: tools.0.name"),
            ({"prompt": ""}, "invalid field prompt: must not be empty"),
            (
                {"instructions": "x"},
                "instructions needs agent_id; a call without an agent takes prompt instead",
            ),
            (
                {"persona": "x"},
                "persona belongs to the agent and cannot be set per call: dispatch from an "
                "agent (agent_id) that has it",
            ),
            (
                {"voice": "x"},
                "voice belongs to the agent and cannot be set per call: dispatch from an "
                "agent (agent_id) that has it",
            ),
        ],
    )
    async def test_bad_fields_are_400(
        self, tenant: Tenant, body: dict[str, Any], message: str
    ) -> None:
        await buy_number(tenant, 0)
        r = await tenant.client.post("/v1/calls", json={"to": TO, **body})
        assert r.status_code == 400
        assert r.json() == error(r, message)


class TestCarrierRefusal:
    @pytest.mark.parametrize("legacy", [True, False])
    async def test_0007_is_502_and_leaves_no_call(
        self, tenant: Tenant, runner: Runner, legacy: bool
    ) -> None:
        agent = await outbound_agent(tenant)
        to = destination("0007", "212")
        body = {"to": to} if legacy else {"agent_id": agent["id"], "to": to}
        r = await tenant.client.post("/v1/calls", json=body)
        assert r.status_code == 502
        message = (
            f"the carrier could not place the call to {to}; no call was created "
            "(sandbox: numbers ending 0007 are always refused)"
        )
        assert r.json() == error(r, message, "carrier_unavailable")
        r = await tenant.client.get("/v1/calls")
        assert r.json() == {"data": [], "has_more": False}


class TestIdempotentDispatch:
    async def test_a_retry_replays_the_call(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(tenant)
        body = {"agent_id": agent["id"], "to": TO}
        headers = {"Idempotency-Key": "dispatch-1"}
        first = await tenant.client.post("/v1/calls", json=body, headers=headers)
        again = await tenant.client.post("/v1/calls", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["etag"] == first.headers["etag"]
        page = (await tenant.client.get("/v1/calls")).json()
        assert [call["id"] for call in page["data"]] == [first.json()["id"]]
        assert await runner.events(first.json()["id"]) == ["call.queued"]

    async def test_a_refusal_is_not_stored(self, tenant: Tenant) -> None:
        """A 502 says nothing about the request: a retry with the key tries the carrier again."""
        await buy_number(tenant, 0)
        headers = {"Idempotency-Key": "refused-1"}
        first = await tenant.client.post(
            "/v1/calls", json={"to": destination("0007")}, headers=headers
        )
        assert first.status_code == 502
        again = await tenant.client.post(
            "/v1/calls", json={"to": destination("0007")}, headers=headers
        )
        assert again.status_code == 502
        assert "idempotent-replayed" not in again.headers
