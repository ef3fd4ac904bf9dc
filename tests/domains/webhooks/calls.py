"""Call events as the calls domain writes them (``data = {"call": <Call as of the event>}``),
for every outcome row of the sandbox table (section 5 of the contract)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from callingbox_server.domains.events.types import CallEventType

# Outcome -> the events of one call, in order; one terminal event per call.
OUTCOMES: dict[str, tuple[CallEventType, ...]] = {
    "completed": ("call.queued", "call.ringing", "call.answered", "call.completed"),
    "no_answer": ("call.queued", "call.ringing", "call.no_answer"),
    "busy": ("call.queued", "call.ringing", "call.busy"),
    "failed_ringing": ("call.queued", "call.ringing", "call.failed"),
    "voicemail_hangup": ("call.queued", "call.ringing", "call.answered", "call.no_answer"),
    "voicemail_message": ("call.queued", "call.ringing", "call.answered", "call.completed"),
    "agent_error": ("call.queued", "call.ringing", "call.answered", "call.failed"),
    "extraction_failed": ("call.queued", "call.ringing", "call.answered", "call.completed"),
    "canceled": ("call.queued", "call.canceled"),
}
_STATUS = {
    "call.queued": "queued",
    "call.ringing": "ringing",
    "call.answered": "in_progress",
    "call.completed": "completed",
    "call.failed": "failed",
    "call.no_answer": "no_answer",
    "call.busy": "busy",
    "call.canceled": "canceled",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def call(
    org_id: uuid.UUID, call_id: uuid.UUID, event: CallEventType, webhook_url: str | None
) -> dict[str, Any]:
    """The Call wire object as of ``event`` (every field of section 4, in its order)."""
    status = _STATUS[event]
    terminal = status in ("completed", "failed", "no_answer", "busy", "canceled")
    answered = event in ("call.answered", "call.completed") or status == "failed"
    now = _now()
    return {
        "id": str(call_id),
        "agent_id": str(uuid.uuid4()),
        "direction": "outbound",
        "to_number": "+14155550123",
        "from_number": "+14155550100",
        "status": status,
        "answered_by": "human" if answered else None,
        "persona": None,
        "instructions": "Confirm tomorrow's appointment.",
        "prompt": "You are a helpful assistant.\n\nConfirm tomorrow's appointment.",
        "context": {},
        "returns": {"confirmed": "boolean"},
        "result": {"confirmed": True} if status == "completed" else None,
        "result_status": "completed" if status == "completed" else "pending",
        "result_error": None,
        "language": "en",
        "tools": None,
        "voicemail_action": "hangup",
        "webhook_url": webhook_url,
        "webhook_status": "pending",
        "webhook_error": None,
        "metadata": {"crm_id": "42"},
        "created_at": now,
        "updated_at": now,
        "started_at": now if status != "queued" else None,
        "answered_at": now if answered else None,
        "ended_at": now if terminal else None,
        "duration_seconds": 3 if terminal else None,
        "billed_duration_seconds": 2 if terminal and answered else (0 if terminal else None),
        "billing_amount_milli_cents": 300 if terminal and answered else (0 if terminal else None),
        "reservation_status": ("settled" if answered else "released") if terminal else "reserved",
        "error_code": "agent_error" if status == "failed" else None,
        "error_message": None,
        "hangup_cause": None,
    }
