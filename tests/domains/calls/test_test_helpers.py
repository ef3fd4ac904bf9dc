"""/v1/test_helpers: every legal and illegal step by hand, results by hand, inbound calls."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domains.calls.calls import (
    AGENT_CONFIRMS,
    CALLER_ANSWER,
    OPENING,
    STATUS_CHOICES,
    destination,
    dispatch,
    get_call,
    outbound_agent,
    transcript,
)
from tests.domains.calls.conftest import Runner
from tests.fixtures.factories import attach, buy_number, create_agent, error, random_id
from tests.fixtures.tenants import Tenant

STATUSES = [
    "queued",
    "initiated",
    "ringing",
    "in_progress",
    "completed",
    "no_answer",
    "busy",
    "canceled",
    "failed",
]
LEGAL = {
    "queued": ["initiated", "canceled"],
    "initiated": ["ringing", "canceled"],
    "ringing": ["in_progress", "no_answer", "busy", "failed", "canceled"],
    "in_progress": ["completed", "failed"],
}
# How to bring a manual (0009) call to each status by hand, from queued.
PATHS = {
    "queued": [],
    "initiated": ["initiated"],
    "ringing": ["initiated", "ringing"],
    "in_progress": ["initiated", "ringing", "in_progress"],
    "completed": ["initiated", "ringing", "in_progress", "completed"],
    "no_answer": ["initiated", "ringing", "no_answer"],
    "busy": ["initiated", "ringing", "busy"],
    "canceled": ["canceled"],
    "failed": ["initiated", "ringing", "failed"],
}
EVENTS = {
    "queued": "call.queued",
    "ringing": "call.ringing",
    "in_progress": "call.answered",
    "completed": "call.completed",
    "no_answer": "call.no_answer",
    "busy": "call.busy",
    "canceled": "call.canceled",
    "failed": "call.failed",
}
PAIRS = [(current, target) for current in STATUSES for target in STATUSES]


async def advance(tenant: Tenant, call_id: str, status: str, **fields: Any) -> dict[str, Any]:
    r = await tenant.client.post(
        f"/v1/test_helpers/calls/{call_id}/advance", json={"status": status, **fields}
    )
    assert r.status_code == 200, r.text
    call: dict[str, Any] = r.json()
    return call


async def manual_call(tenant: Tenant, line: int = 0, **fields: Any) -> dict[str, Any]:
    """A call the runner never moves: it waits at queued until a helper moves it (the runner is
    not run in these tests), and a 0009 call stops ringing for good."""
    agent = await outbound_agent(tenant, line, **fields)
    return await dispatch(tenant, agent_id=agent["id"], to=destination("0009"))


class TestAdvance:
    @pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{c}-{t}" for c, t in PAIRS])
    async def test_every_pair(
        self, tenant: Tenant, runner: Runner, current: str, target: str
    ) -> None:
        call = await manual_call(tenant)
        for status in PATHS[current]:
            await advance(tenant, call["id"], status)
        before = await get_call(tenant, call["id"])
        r = await tenant.client.post(
            f"/v1/test_helpers/calls/{call['id']}/advance", json={"status": target}
        )
        path = ["queued", *PATHS[current]]
        if target in LEGAL.get(current, []):
            assert r.status_code == 200, r.text
            assert r.json()["status"] == target
            assert r.json() == await get_call(tenant, call["id"])
            path.append(target)
        else:
            assert r.status_code == 409
            allowed = LEGAL.get(current)
            then = f"; it can move to {', '.join(allowed)}" if allowed else ", which is final"
            message = f"call {call['id']} is {current} and cannot move to {target}{then}"
            assert r.json() == error(r, message, "invalid_transition")
            assert await get_call(tenant, call["id"]) == before
        assert await runner.events(call["id"]) == [EVENTS[s] for s in path if s in EVENTS]

    async def test_a_call_moved_by_hand_is_not_played_on(
        self, tenant: Tenant, runner: Runner
    ) -> None:
        agent = await outbound_agent(tenant)
        call = await dispatch(tenant, agent_id=agent["id"], to=destination("0123"))
        await advance(tenant, call["id"], "initiated")
        await runner.play()
        assert (await get_call(tenant, call["id"]))["status"] == "initiated"

    async def test_completed_by_hand(self, tenant: Tenant, runner: Runner) -> None:
        call = await manual_call(tenant, returns={"ok": "boolean", "n": "number", "s": "string"})
        for status in ("initiated", "ringing"):
            await advance(tenant, call["id"], status)
        answered = await advance(tenant, call["id"], "in_progress", answered_by="machine")
        assert answered["answered_by"] == "machine"
        done = await advance(
            tenant,
            call["id"],
            "completed",
            result={"ok": False, "n": 2.5},
            transcript=[{"role": "caller", "text": "Hello?"}, {"role": "agent", "text": "Hi!"}],
        )
        assert done["result"] == {"ok": False, "n": 2.5, "s": None}
        assert (done["result_status"], done["reservation_status"]) == ("completed", "settled")
        segments = await transcript(tenant, call["id"])
        assert [(s["role"], s["source"], s["text"]) for s in segments] == [
            ("caller", "stt", "Hello?"),
            ("agent", "tts", "Hi!"),
        ]

    async def test_completed_by_hand_defaults(self, tenant: Tenant) -> None:
        call = await manual_call(tenant, instructions="Say hi.", returns={"ok": "boolean"})
        for status in ("initiated", "ringing", "in_progress"):
            await advance(tenant, call["id"], status)
        done = await advance(tenant, call["id"], "completed")
        assert (done["answered_by"], done["result"]) == ("human", {"ok": True})
        assert [s["text"] for s in await transcript(tenant, call["id"])] == [
            OPENING + "Say hi.",
            CALLER_ANSWER,
            AGENT_CONFIRMS,
        ]

    async def test_failed_by_hand(self, tenant: Tenant) -> None:
        call = await manual_call(tenant)
        for status in ("initiated", "ringing", "in_progress"):
            await advance(tenant, call["id"], status)
        failed = await advance(
            tenant, call["id"], "failed", error_code="tool_timeout", error_message="Too slow."
        )
        assert (failed["error_code"], failed["error_message"], failed["result_status"]) == (
            "tool_timeout",
            "Too slow.",
            "failed",
        )
        other = await manual_call(tenant, line=1)
        for status in ("initiated", "ringing"):
            await advance(tenant, other["id"], status)
        failed = await advance(tenant, other["id"], "failed")
        assert (failed["error_code"], failed["result_status"]) == ("carrier_error", "pending")

    @pytest.mark.parametrize(
        ("result", "message"),
        [
            ({"other": 1}, "invalid field result.other: not declared in the call's returns"),
            ({"ok": "yes"}, "invalid field result.ok: must be a boolean (or null)"),
            ({"n": True}, "invalid field result.n: must be a number (or null)"),
            ({"s": 3}, "invalid field result.s: must be a string (or null)"),
        ],
    )
    async def test_result_must_match_returns(
        self, tenant: Tenant, result: dict[str, Any], message: str
    ) -> None:
        call = await manual_call(tenant, returns={"ok": "boolean", "n": "number", "s": "string"})
        for status in ("initiated", "ringing", "in_progress"):
            await advance(tenant, call["id"], status)
        before = await get_call(tenant, call["id"])
        r = await tenant.client.post(
            f"/v1/test_helpers/calls/{call['id']}/advance",
            json={"status": "completed", "result": result},
        )
        assert r.status_code == 400
        assert r.json() == error(r, message)
        assert await get_call(tenant, call["id"]) == before

    async def test_result_without_returns_is_400(self, tenant: Tenant) -> None:
        call = await manual_call(tenant)
        for status in ("initiated", "ringing", "in_progress"):
            await advance(tenant, call["id"], status)
        r = await tenant.client.post(
            f"/v1/test_helpers/calls/{call['id']}/advance",
            json={"status": "completed", "result": {"a": 1}},
        )
        assert r.status_code == 400
        assert r.json() == error(r, "invalid field result: the call has no returns schema")

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({}, "missing required field: status"),
            (
                {"status": "ended"},
                f"invalid field status: {STATUS_CHOICES}",
            ),
            (
                {"status": "initiated", "answered_by": "human"},
                "answered_by can only be given with status in_progress or no_answer",
            ),
            ({"status": "failed", "result": {}}, "result can only be given with status completed"),
            (
                {"status": "busy", "error_code": "x"},
                "error_code can only be given with status failed",
            ),
            (
                {"status": "in_progress", "answered_by": "robot"},
                "invalid field answered_by: must be human or machine",
            ),
        ],
    )
    async def test_bad_bodies_are_400(
        self, tenant: Tenant, body: dict[str, Any], message: str
    ) -> None:
        call = await manual_call(tenant)
        r = await tenant.client.post(f"/v1/test_helpers/calls/{call['id']}/advance", json=body)
        assert r.status_code == 400
        assert r.json() == error(r, message)

    async def test_unknown_call_is_404(self, tenant: Tenant) -> None:
        for call_id in (random_id(), "nope"):
            r = await tenant.client.post(
                f"/v1/test_helpers/calls/{call_id}/advance", json={"status": "initiated"}
            )
            assert r.status_code == 404
            assert r.json() == error(r, f"call {call_id} not found", "not_found")

    async def test_idempotent(self, tenant: Tenant, runner: Runner) -> None:
        call = await manual_call(tenant)
        headers = {"Idempotency-Key": "advance-1"}
        path = f"/v1/test_helpers/calls/{call['id']}/advance"
        first = await tenant.client.post(path, json={"status": "initiated"}, headers=headers)
        again = await tenant.client.post(path, json={"status": "initiated"}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"


class TestInboundCalls:
    async def test_answered_by_the_inbound_agent(self, tenant: Tenant, runner: Runner) -> None:
        number = await buy_number(tenant, 0)
        agent = await create_agent(
            tenant,
            type="inbound",
            number_ids=[number["id"]],
            persona="You are the front desk.",
            instructions="Take a message.",
            returns={"message": "string"},
            webhook_url="https://example.com/inbound",
        )
        caller = destination("4321", "212")
        r = await tenant.client.post(
            "/v1/test_helpers/inbound_calls", json={"to": number["e164"], "from": caller}
        )
        assert r.status_code == 201, r.text
        call = r.json()
        assert (call["direction"], call["agent_id"], call["status"]) == (
            "inbound",
            agent["id"],
            "queued",
        )
        assert (call["to_number"], call["from_number"]) == (number["e164"], caller)
        assert call["prompt"] == "You are the front desk.\n\nTake a message."
        assert call["webhook_url"] == "https://example.com/inbound"
        await runner.play()
        done = await get_call(tenant, call["id"])
        assert (done["status"], done["answered_by"], done["result"]) == (
            "completed",
            "human",
            {"message": "sandbox sample"},
        )
        assert await runner.events(call["id"]) == [
            "call.queued",
            "call.ringing",
            "call.answered",
            "call.completed",
        ]

    @pytest.mark.parametrize(
        ("last_four", "status", "result_status"),
        [
            ("0005", "failed", "failed"),
            ("0006", "completed", "failed"),
            ("0009", "ringing", "pending"),
            # The rest of the table is about the number dialed: an inbound call is answered.
            ("0001", "completed", "completed"),
            ("0007", "completed", "completed"),
        ],
    )
    async def test_outcome_from_the_callers_number(
        self, tenant: Tenant, runner: Runner, last_four: str, status: str, result_status: str
    ) -> None:
        number = await buy_number(tenant, 0)
        await create_agent(
            tenant, type="inbound", number_ids=[number["id"]], returns={"a": "number"}
        )
        r = await tenant.client.post(
            "/v1/test_helpers/inbound_calls",
            json={"to": number["e164"], "from": destination(last_four, "303")},
        )
        assert r.status_code == 201, r.text
        await runner.play()
        done = await get_call(tenant, r.json()["id"])
        assert (done["status"], done["result_status"]) == (status, result_status)

    async def test_number_without_inbound_agent_is_409(
        self, tenant: Tenant, runner: Runner
    ) -> None:
        number = await buy_number(tenant, 0)
        outbound = await create_agent(tenant, type="outbound")
        await attach(tenant, outbound["id"], number["id"])
        r = await tenant.client.post(
            "/v1/test_helpers/inbound_calls",
            json={"to": number["e164"], "from": destination("1111")},
        )
        assert r.status_code == 409
        message = f"number {number['e164']} has no inbound agent to answer it"
        assert r.json() == error(r, message, "no_inbound_agent")
        assert (await tenant.client.get("/v1/calls")).json()["data"] == []

    async def test_not_the_orgs_number_is_404(self, tenant: Tenant, other_tenant: Tenant) -> None:
        foreign = await buy_number(other_tenant, 0)
        await create_agent(other_tenant, type="inbound", number_ids=[foreign["id"]])
        for to in (foreign["e164"], tenant.phones.phone(5)):
            r = await tenant.client.post(
                "/v1/test_helpers/inbound_calls", json={"to": to, "from": destination("1111")}
            )
            assert r.status_code == 404
            assert r.json() == error(r, f"number {to} not found", "not_found")

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"to": "+14155550100"}, "missing required field: from"),
            (
                {"to": "x", "from": "+14155550100"},
                "invalid field to: must be a US number in E.164 form, such as +14155550123",
            ),
            (
                {"to": "+14155550100", "from": "+14155550100", "agent_id": random_id()},
                "unknown field: agent_id",
            ),
        ],
    )
    async def test_bad_bodies_are_400(
        self, tenant: Tenant, body: dict[str, Any], message: str
    ) -> None:
        r = await tenant.client.post("/v1/test_helpers/inbound_calls", json=body)
        assert r.status_code == 400
        assert r.json() == error(r, message)
