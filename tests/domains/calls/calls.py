"""What the calls tests share: dispatching, the Call the API should send, destinations."""

from __future__ import annotations

from typing import Any

from tests.fixtures.factories import TIMESTAMP, UUID, buy_number, create_agent
from tests.fixtures.tenants import Tenant

DEFAULT_PERSONA = "You are a friendly, concise phone agent."
OPENING = "Hi, this is your CallingBox agent. "
CALLER_ANSWER = "Yes, that works for me. Thank you for calling."
AGENT_CONFIRMS = "Great, I have noted that. Have a good day, goodbye!"
STATUS_CHOICES = (
    "must be one of queued, initiated, ringing, in_progress, completed, no_answer, busy, "
    "canceled or failed"
)


def destination(last_four: str, area_code: str = "415") -> str:
    """A number whose last four digits pick the sandbox outcome."""
    return f"+1{area_code}555{last_four}"


async def outbound_agent(tenant: Tenant, line: int = 0, **fields: Any) -> dict[str, Any]:
    """An outbound agent with one number of the tenant's (its primary)."""
    number = await buy_number(tenant, line)
    return await create_agent(
        tenant, name="Reminders", type="outbound", number_ids=[number["id"]], **fields
    )


async def dispatch(tenant: Tenant, **body: Any) -> dict[str, Any]:
    r = await tenant.client.post("/v1/calls", json=body)
    assert r.status_code == 201, r.text
    call: dict[str, Any] = r.json()
    return call


async def get_call(tenant: Tenant, call_id: str) -> dict[str, Any]:
    r = await tenant.client.get(f"/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    call: dict[str, Any] = r.json()
    return call


async def transcript(tenant: Tenant, call_id: str) -> list[dict[str, Any]]:
    r = await tenant.client.get(f"/v1/calls/{call_id}/transcript")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["call_id"] == call_id
    segments: list[dict[str, Any]] = body["segments"]
    return segments


def queued_call(**fields: Any) -> dict[str, Any]:
    """A Call just dispatched: defaults, overridden by ``fields``."""
    return {
        "id": UUID,
        "agent_id": None,
        "direction": "outbound",
        "to_number": destination("0123"),
        "from_number": None,
        "status": "queued",
        "answered_by": None,
        "persona": None,
        "instructions": None,
        "prompt": DEFAULT_PERSONA,
        "context": {},
        "returns": None,
        "result": None,
        "result_status": "pending",
        "result_error": None,
        "language": None,
        "tools": None,
        "voicemail_action": "hangup",
        "webhook_url": None,
        "webhook_status": "pending",
        "webhook_error": None,
        "metadata": {},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "started_at": None,
        "answered_at": None,
        "ended_at": None,
        "duration_seconds": None,
        "billed_duration_seconds": None,
        "billing_amount_milli_cents": None,
        "reservation_status": "reserved",
        "error_code": None,
        "error_message": None,
        "hangup_cause": None,
        **fields,
    }
