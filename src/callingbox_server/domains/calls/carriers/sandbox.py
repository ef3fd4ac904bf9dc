"""The built-in carrier: no network, every call played out by section 5 of the contract.

The outcome comes from the last four digits of the number dialed (of the caller's number for an
inbound call, where only 0005, 0006 and 0009 apply): 0001 no answer, 0002 busy, 0003 fails while
ringing, 0004 voicemail, 0005 the agent fails mid-call, 0006 extraction fails, 0007 refused at
dispatch, 0009 manual (stops ringing until a test helper moves it); anything else is a human who
completes the call.
"""

from __future__ import annotations

from typing import Any

from callingbox_server.core.errors import CarrierUnavailable
from callingbox_server.domains.calls.carriers.interface import CallState, CarrierEvent, Dial

NO_ANSWER, BUSY, CARRIER_ERROR, VOICEMAIL = "0001", "0002", "0003", "0004"
AGENT_ERROR, EXTRACTION_FAILS, REFUSED, MANUAL = "0005", "0006", "0007", "0009"
_INBOUND_OUTCOMES = (AGENT_ERROR, EXTRACTION_FAILS, MANUAL)

CALLER_ANSWER = "Yes, that works for me. Thank you for calling."
AGENT_CONFIRMS = "Great, I have noted that. Have a good day, goodbye!"
DEFAULT_TASK = "Hello from CallingBox."
SAMPLE_STRING = "sandbox sample"
_SAMPLES: dict[str, Any] = {"boolean": True, "number": 1, "string": SAMPLE_STRING}


def outcome(call: CallState | Dial) -> str:
    """Which row of the sandbox table applies to the call ("" for a plain completed call)."""
    if call.direction == "inbound":
        digits = call.from_number[-4:]
        return digits if digits in _INBOUND_OUTCOMES else ""
    return call.to_number[-4:]


def task(instructions: str | None) -> str:
    """The task the agent opens with: the first line of its instructions, at most 200 chars."""
    lines = (instructions or "").strip().splitlines()
    first = lines[0].strip() if lines else ""
    if not first:
        return DEFAULT_TASK
    return first if len(first) <= 200 else first[:199].rstrip() + "…"


def opening(call: CallState) -> str:
    return f"Hi, this is your CallingBox agent. {task(call.instructions)}"


def sample_result(returns: dict[str, str] | None) -> dict[str, Any] | None:
    """Each ``returns`` key with the fixed sample of its declared type."""
    return None if returns is None else {key: _SAMPLES[kind] for key, kind in returns.items()}


def empty_result(returns: dict[str, str] | None) -> dict[str, Any] | None:
    return None if returns is None else dict.fromkeys(returns)


class SandboxCarrier:
    name = "sandbox"
    rate_milli_cents = 150  # 9 cents a minute
    test_helpers = True

    def __init__(self, ring_seconds: float, talk_seconds: float) -> None:
        self.ring_seconds = ring_seconds
        self.talk_seconds = talk_seconds

    async def place(self, dial: Dial) -> float | None:
        if dial.direction == "outbound" and outcome(dial) == REFUSED:
            raise CarrierUnavailable(
                f"the carrier could not place the call to {dial.to_number}; "
                "no call was created (sandbox: numbers ending 0007 are always refused)"
            )
        return 0.0

    async def cancel(self, call: CallState) -> None:
        return None

    async def next_event(self, call: CallState) -> CarrierEvent | None:
        status = call.status
        if status == "queued":
            return CarrierEvent("initiated", next_in=0.0)
        if status == "initiated":
            manual = outcome(call) == MANUAL
            return CarrierEvent("ringing", next_in=None if manual else self.ring_seconds)
        if status == "ringing":
            return self._answer(call)
        if status == "in_progress":
            return self._hang_up(call)
        return None

    def _answer(self, call: CallState) -> CarrierEvent | None:
        """The end of ringing: answered, or one of the table's unanswered outcomes."""
        row = outcome(call)
        if row == MANUAL:
            return None
        if call.direction == "outbound":
            if row == NO_ANSWER:
                return CarrierEvent("no_answer", hangup_cause="no_answer")
            if row == BUSY:
                return CarrierEvent("busy", hangup_cause="user_busy")
            if row == CARRIER_ERROR:
                return CarrierEvent(
                    "failed",
                    error_code="carrier_error",
                    error_message="the carrier lost the call while it was ringing",
                    hangup_cause="carrier_error",
                )
            if row == VOICEMAIL:
                if call.voicemail_action == "hangup":
                    return CarrierEvent(
                        "no_answer", answered_by="machine", hangup_cause="machine_detected"
                    )
                return CarrierEvent("in_progress", answered_by="machine", next_in=self.talk_seconds)
        return CarrierEvent("in_progress", answered_by="human", next_in=self.talk_seconds)

    def _hang_up(self, call: CallState) -> CarrierEvent:
        """The end of the conversation, with its transcript and result."""
        row = outcome(call)
        if call.direction == "outbound" and row == VOICEMAIL:
            message = f"{opening(call)} Please call us back at {call.from_number}."
            return CarrierEvent(
                "completed", transcript=(("agent", message),), hangup_cause="normal_clearing"
            )
        if row == AGENT_ERROR:
            return CarrierEvent(
                "failed",
                error_code="agent_error",
                error_message="the agent stopped responding during the call",
                hangup_cause="agent_error",
                transcript=(("agent", opening(call)), ("caller", CALLER_ANSWER)),
                result_status="failed",
                result_error="the call failed before a result could be extracted",
            )
        transcript = (
            ("agent", opening(call)),
            ("caller", CALLER_ANSWER),
            ("agent", AGENT_CONFIRMS),
        )
        if row == EXTRACTION_FAILS:
            return CarrierEvent(
                "completed",
                transcript=transcript,
                hangup_cause="normal_clearing",
                result_status="failed",
                result_error="extraction failed: the transcript did not answer the returns schema",
            )
        return CarrierEvent(
            "completed",
            transcript=transcript,
            hangup_cause="normal_clearing",
            result=sample_result(call.returns),
            result_status="completed",
        )
