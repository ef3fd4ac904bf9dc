"""Every row of the sandbox table, played out by the runner and read through the API."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.domains.calls.calls import (
    AGENT_CONFIRMS,
    CALLER_ANSWER,
    OPENING,
    destination,
    dispatch,
    get_call,
    outbound_agent,
    transcript,
)
from tests.domains.calls.conftest import Runner
from tests.fixtures.factories import TIMESTAMP
from tests.fixtures.tenants import Tenant

TASK = "Confirm the delivery window."
RETURNS = {"confirmed": "boolean", "count": "number", "note": "string"}
NO_RESULT = {"confirmed": None, "count": None, "note": None}
SAMPLE = {"confirmed": True, "count": 1, "note": "sandbox sample"}
FULL = [
    ("agent", "tts", OPENING + TASK),
    ("caller", "stt", CALLER_ANSWER),
    ("agent", "tts", AGENT_CONFIRMS),
]


@dataclass
class Outcome:
    last_four: str
    status: str
    events: list[str]
    answered_by: str | None = None
    voicemail_action: str = "hangup"
    fields: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = field(default_factory=lambda: dict(NO_RESULT))
    result_status: str = "pending"
    result_error: str | None = None
    segments: list[tuple[str, str, str]] = field(default_factory=list)


UNANSWERED = ["call.queued", "call.ringing"]
ANSWERED = [*UNANSWERED, "call.answered"]
OUTCOMES = [
    Outcome(
        "0123",
        "completed",
        [*ANSWERED, "call.completed"],
        "human",
        fields={"hangup_cause": "normal_clearing"},
        result=SAMPLE,
        result_status="completed",
        segments=FULL,
    ),
    Outcome(
        "0001", "no_answer", [*UNANSWERED, "call.no_answer"], fields={"hangup_cause": "no_answer"}
    ),
    Outcome("0002", "busy", [*UNANSWERED, "call.busy"], fields={"hangup_cause": "user_busy"}),
    Outcome(
        "0003",
        "failed",
        [*UNANSWERED, "call.failed"],
        fields={
            "error_code": "carrier_error",
            "error_message": "the carrier lost the call while it was ringing",
            "hangup_cause": "carrier_error",
        },
    ),
    Outcome(
        "0004",
        "no_answer",
        [*UNANSWERED, "call.no_answer"],
        "machine",
        fields={"hangup_cause": "machine_detected"},
    ),
    Outcome(
        "0004",
        "completed",
        [*ANSWERED, "call.completed"],
        "machine",
        voicemail_action="leave_message",
        fields={"hangup_cause": "normal_clearing"},
        segments=[("agent", "tts", f"{OPENING}{TASK} Please call us back at {{from}}.")],
    ),
    Outcome(
        "0005",
        "failed",
        [*ANSWERED, "call.failed"],
        "human",
        fields={
            "error_code": "agent_error",
            "error_message": "the agent stopped responding during the call",
            "hangup_cause": "agent_error",
        },
        result_status="failed",
        result_error="the call failed before a result could be extracted",
        segments=FULL[:2],
    ),
    Outcome(
        "0006",
        "completed",
        [*ANSWERED, "call.completed"],
        "human",
        fields={"hangup_cause": "normal_clearing"},
        result_status="failed",
        result_error="extraction failed: the transcript did not answer the returns schema",
        segments=FULL,
    ),
]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _seconds(start: str, end: str) -> int:
    return math.ceil((_time(end) - _time(start)).total_seconds())


class TestSandboxOutcomes:
    @pytest.mark.parametrize(
        "outcome", OUTCOMES, ids=lambda o: f"{o.last_four}-{o.status}-{o.voicemail_action}"
    )
    async def test_outcome(self, tenant: Tenant, runner: Runner, outcome: Outcome) -> None:
        agent = await outbound_agent(
            tenant, instructions=TASK, returns=RETURNS, voicemail_action=outcome.voicemail_action
        )
        dispatched = await dispatch(tenant, agent_id=agent["id"], to=destination(outcome.last_four))
        await runner.play()
        call = await get_call(tenant, dispatched["id"])
        answered = outcome.status in ("completed", "failed") and outcome.events == [
            *ANSWERED,
            outcome.events[-1],
        ]
        billed = _seconds(call["answered_at"], call["ended_at"]) if answered else 0
        assert call == {
            **dispatched,
            "status": outcome.status,
            "answered_by": outcome.answered_by,
            "updated_at": call["ended_at"],
            "started_at": TIMESTAMP,
            "answered_at": TIMESTAMP if answered else None,
            "ended_at": TIMESTAMP,
            "duration_seconds": _seconds(call["started_at"], call["ended_at"]),
            "billed_duration_seconds": billed,
            "billing_amount_milli_cents": 150 * billed,
            "reservation_status": "settled" if answered else "released",
            "result": outcome.result,
            "result_status": outcome.result_status,
            "result_error": outcome.result_error,
            **outcome.fields,
        }
        times = [call["created_at"], call["started_at"], call["answered_at"], call["ended_at"]]
        present = [_time(t) for t in times if t is not None]
        assert present == sorted(present)
        assert len(set(present)) == len(present)
        if answered:
            assert billed >= 1
        assert await runner.events(call["id"]) == outcome.events
        segments = await transcript(tenant, call["id"])
        from_number = call["from_number"]
        assert [(s["sequence_no"], s["role"], s["source"], s["text"]) for s in segments] == [
            (n, role, source, text.replace("{from}", from_number))
            for n, (role, source, text) in enumerate(outcome.segments, 1)
        ]
        for segment in segments:
            assert call["answered_at"] <= segment["started_at"] <= segment["ended_at"]
            assert segment["ended_at"] <= call["ended_at"]
            assert segment["duration_ms"] == round(
                (_time(segment["ended_at"]) - _time(segment["started_at"])).total_seconds() * 1000
            )

    async def test_every_event_carries_the_call_as_of_it(
        self, tenant: Tenant, runner: Runner
    ) -> None:
        agent = await outbound_agent(tenant, returns=RETURNS)
        call = await dispatch(tenant, agent_id=agent["id"], to=destination("0123"))
        await runner.play()
        statuses = [data["call"]["status"] for data in await runner.event_data(call["id"])]
        assert statuses == ["queued", "ringing", "in_progress", "completed"]
        final = (await runner.event_data(call["id"]))[-1]["call"]
        assert final == await get_call(tenant, call["id"])

    async def test_0009_rings_until_moved_by_hand(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(tenant)
        call = await dispatch(tenant, agent_id=agent["id"], to=destination("0009"))
        await runner.play()
        ringing = await get_call(tenant, call["id"])
        assert ringing["status"] == "ringing"
        assert ringing["started_at"] == ringing["updated_at"]
        assert ringing["ended_at"] is None
        assert await runner.play() == 0
        assert await get_call(tenant, call["id"]) == ringing
        assert await runner.events(call["id"]) == UNANSWERED

    async def test_no_returns_no_result(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(tenant)
        call = await dispatch(tenant, agent_id=agent["id"], to=destination("0123"))
        await runner.play()
        done = await get_call(tenant, call["id"])
        assert (done["status"], done["result"], done["result_status"]) == (
            "completed",
            None,
            "completed",
        )

    async def test_legacy_call_plays_its_prompt(self, tenant: Tenant, runner: Runner) -> None:
        await outbound_agent(tenant)
        call = await dispatch(
            tenant,
            to=destination("0123"),
            prompt="Ask for the invoice.\nThen hang up.",
            returns={"paid": "boolean"},
        )
        await runner.play()
        done = await get_call(tenant, call["id"])
        assert (done["status"], done["result"]) == ("completed", {"paid": True})
        segments = await transcript(tenant, call["id"])
        assert segments[0]["text"] == OPENING + "Ask for the invoice."
