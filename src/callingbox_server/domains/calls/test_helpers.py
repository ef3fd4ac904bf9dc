"""The sandbox's test helpers: move a call one legal step by hand, or place an inbound call.

A call a helper has moved is played by hand from then on: the move leaves it no step of its own.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.errors import (
    InvalidRequest,
    InvalidTransition,
    NoInboundAgent,
    NotFound,
)
from callingbox_server.core.principal import Principal
from callingbox_server.domains.calls import repository, schemas, service
from callingbox_server.domains.calls.carriers.interface import CallState, Carrier, CarrierEvent
from callingbox_server.domains.calls.carriers.sandbox import (
    AGENT_CONFIRMS,
    CALLER_ANSWER,
    opening,
    sample_result,
)
from callingbox_server.domains.calls.lifecycle import NEXT, Move, is_legal

# Which fields go with which status (checked after the call is found, before the move).
_WITH_STATUS = {
    "answered_by": ("in_progress", "no_answer"),
    "result": ("completed",),
    "transcript": ("completed", "failed"),
    "error_code": ("failed",),
    "error_message": ("failed",),
}
_JSON_TYPES = {"boolean": (bool,), "number": (int, float), "string": (str,)}
_HANGUP_CAUSES = {
    "no_answer": "no_answer",
    "busy": "user_busy",
    "canceled": "canceled",
    "completed": "normal_clearing",
}


def _checked_result(call: CallState, result: dict[str, Any]) -> dict[str, Any]:
    """A result given by hand, against the call's ``returns``: every declared key (null where
    not given), no other key, each value of its declared type."""
    returns = call.returns
    if returns is None:
        raise InvalidRequest("invalid field result: the call has no returns schema")
    for key, value in result.items():
        kind = returns.get(key)
        if kind is None:
            raise InvalidRequest(f"invalid field result.{key}: not declared in the call's returns")
        # bool is an int in Python, not a number in JSON.
        wrong = not isinstance(value, _JSON_TYPES[kind]) or (
            kind == "number" and isinstance(value, bool)
        )
        if value is not None and wrong:
            raise InvalidRequest(f"invalid field result.{key}: must be a {kind} (or null)")
    return {key: result.get(key) for key in returns}


def _event(call: CallState, body: schemas.Advance) -> CarrierEvent:
    target = body.status
    transcript = (
        None
        if body.transcript is None
        else tuple((line.role, line.text) for line in body.transcript)
    )
    if target == "in_progress":
        return CarrierEvent(target, answered_by=body.answered_by or "human")
    if target == "failed":
        answered = call.status == "in_progress"
        return CarrierEvent(
            target,
            error_code=body.error_code or ("agent_error" if answered else "carrier_error"),
            error_message=body.error_message or "failed by a test helper",
            hangup_cause=body.error_code or ("agent_error" if answered else "carrier_error"),
            transcript=transcript,
            result_status="failed" if answered else None,
            result_error="the call failed before a result could be extracted" if answered else None,
        )
    if target == "completed":
        default = (("agent", opening(call)), ("caller", CALLER_ANSWER), ("agent", AGENT_CONFIRMS))
        result = (
            sample_result(call.returns)
            if body.result is None
            else _checked_result(call, body.result)
        )
        return CarrierEvent(
            target,
            transcript=transcript or default,
            hangup_cause="normal_clearing",
            result=result,
            result_status="completed",
        )
    return CarrierEvent(
        target, answered_by=body.answered_by, hangup_cause=_HANGUP_CAUSES.get(target)
    )


async def advance(
    session: AsyncSession,
    principal: Principal,
    call_id: uuid.UUID,
    body: schemas.Advance,
    carrier: Carrier,
) -> bytes:
    call = await service.locked(session, principal, call_id)
    for name, statuses in _WITH_STATUS.items():
        if getattr(body, name) is not None and body.status not in statuses:
            raise InvalidRequest(f"{name} can only be given with status {' or '.join(statuses)}")
    if not is_legal(call.status, body.status):
        allowed = NEXT.get(call.status, ())
        then = f"; it can move to {', '.join(allowed)}" if allowed else ", which is final"
        raise InvalidTransition(
            f"call {call_id} is {call.status} and cannot move to {body.status}{then}"
        )
    if body.status == "canceled":
        await carrier.cancel(call)
    move = Move(call_id, principal.org_id, call.status, _event(call, body))
    (moved,) = await service.apply(session, [move], carrier)
    return moved


async def place_inbound(
    session: AsyncSession, principal: Principal, body: schemas.InboundCall, carrier: Carrier
) -> bytes:
    """Rule 14: the number's inbound agent answers, with its snapshot and no overrides."""
    found = await repository.inbound_agent(session, principal.org_id, body.to)
    if found is None:
        raise NotFound(f"number {body.to} not found")
    if found["id"] is None:
        raise NoInboundAgent(f"number {body.to} has no inbound agent to answer it")
    call = {
        "agent_id": found["id"],
        "direction": "inbound",
        "to_number": body.to,
        "from_number": body.from_,
        "webhook_url": found["webhook_url"],
        "context": {},
        "metadata": {},
        **service.snapshot(found),
    }
    return await service.place(session, carrier, principal.org_id, call)
