"""The call rules: dispatch (rules 11 and 12), reads, cancel, and applying moves (rule 13)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core.db.driver import driver_fetch
from callingbox_server.core.errors import CallNotCancelable, InvalidRequest, NotFound
from callingbox_server.core.pagination import resolve_cursor
from callingbox_server.core.principal import Principal
from callingbox_server.domains.calls import repository, schemas, steps, views
from callingbox_server.domains.calls.carriers.interface import (
    CallState,
    Carrier,
    CarrierEvent,
    Dial,
)
from callingbox_server.domains.calls.lifecycle import CANCELABLE, Move

LEGACY_PROMPT = "Hello from CallingBox."
DEFAULT_PERSONA = "You are a friendly, concise phone agent."


def not_found(call_id: uuid.UUID) -> NotFound:
    return NotFound(f"call {call_id} not found")


def render_prompt(persona: str | None, instructions: str | None) -> str:
    """The system prompt: the persona (or the default one), a blank line, the instructions."""
    prompt = persona if persona is not None else DEFAULT_PERSONA
    return f"{prompt}\n\n{instructions}" if instructions else prompt


def _parsed(text: str | None) -> Any:
    return None if text is None else pydantic_core.from_json(text)


def snapshot(agent: asyncpg.Record, instructions: str | None = None) -> dict[str, Any]:
    """What a call copies from its agent at dispatch (later edits change no call)."""
    returns = _parsed(agent["returns"])
    chosen = instructions if instructions is not None else agent["instructions"]
    return {
        "persona": agent["persona"],
        "instructions": chosen,
        "prompt": render_prompt(agent["persona"], chosen),
        "returns": returns,
        "result": None if returns is None else dict.fromkeys(returns),
        "language": agent["language"],
        "tools": _parsed(agent["tools"]),
        "voicemail_action": agent["voicemail_action"],
    }


async def _agent_call(
    session: AsyncSession, org_id: uuid.UUID, body: schemas.CallCreate
) -> dict[str, Any]:
    assert body.agent_id is not None
    agent_id = body.agent_id
    agent = await repository.dispatch_agent(session, org_id, agent_id, body.from_number)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    if body.prompt is not None:
        raise InvalidRequest(
            "prompt is for calls without agent_id; with an agent, send instructions"
        )
    for name in schemas.AGENT_FIELDS:
        if getattr(body, name) is not None:
            raise InvalidRequest(
                f"{name} belongs to the agent and cannot be set per call when agent_id is "
                "given; change the agent instead"
            )
    if agent["type"] != "outbound":
        raise InvalidRequest(
            f"agent {agent_id} is an inbound agent; calls are dispatched from outbound agents"
        )
    if agent["archived_at"] is not None:
        raise InvalidRequest(f"agent {agent_id} is archived; calls need an agent that is not")
    if not agent["from_attached"]:
        raise InvalidRequest(
            f"invalid field from_number: {body.from_number} is not attached to agent {agent_id}"
        )
    from_number = body.from_number or agent["primary_number"]
    if from_number is None:
        raise InvalidRequest(
            f"agent {agent_id} has no primary number: attach a number to it, or give from_number"
        )
    return {
        "agent_id": agent_id,
        "from_number": from_number,
        "webhook_url": body.webhook_url or agent["webhook_url"],
        **snapshot(agent, body.instructions),
    }


async def _legacy_call(
    session: AsyncSession, org_id: uuid.UUID, body: schemas.CallCreate
) -> dict[str, Any]:
    if body.instructions is not None:
        raise InvalidRequest(
            "instructions needs agent_id; a call without an agent takes prompt instead"
        )
    if body.language is not None and body.language not in schemas.LEGACY_LANGUAGES:
        raise InvalidRequest("invalid field language: must be en or es")
    from_number = await repository.active_number(session, org_id, body.from_number)
    if from_number is None:
        if body.from_number is not None:
            raise InvalidRequest(
                f"invalid field from_number: {body.from_number} is not an active number of "
                "your organization"
            )
        raise InvalidRequest(
            "your organization has no active number to call from: buy one "
            "(POST /v1/numbers/purchase), then dispatch again"
        )
    instructions = body.prompt if body.prompt is not None else LEGACY_PROMPT
    tools = body.tools
    returns = body.returns
    return {
        "agent_id": None,
        "from_number": from_number,
        "webhook_url": body.webhook_url,
        "persona": None,
        "instructions": instructions,
        "prompt": render_prompt(None, instructions),
        "returns": returns,
        "result": None if returns is None else dict.fromkeys(returns),
        "language": body.language or "en",
        "tools": None
        if tools is None
        else [tool.model_dump(mode="json", exclude_none=True) for tool in tools],
        "voicemail_action": body.voicemail_action or "hangup",
    }


async def place(
    session: AsyncSession,
    carrier: Carrier,
    org_id: uuid.UUID,
    call: dict[str, Any],
) -> bytes:
    """Hand the call to the carrier, then record it queued (nothing is left if it refuses)."""
    first_in = await carrier.place(Dial(call["direction"], call["to_number"], call["from_number"]))
    return await repository.insert_call(
        session, {"id": uuid.uuid4(), "org_id": org_id, "first_in": first_in, **call}
    )


async def create_call(
    session: AsyncSession, principal: Principal, body: schemas.CallCreate, carrier: Carrier
) -> bytes:
    org_id = principal.org_id
    if body.agent_id is not None:
        call = await _agent_call(session, org_id, body)
    else:
        call = await _legacy_call(session, org_id, body)
    call |= {
        "direction": "outbound",
        "to_number": body.to,
        "context": body.context or {},
        "metadata": body.metadata or {},
    }
    return await place(session, carrier, org_id, call)


async def get_call(session: AsyncSession, principal: Principal, call_id: uuid.UUID) -> bytes:
    body = await views.read(session, principal.org_id, call_id)
    if body is None:
        raise not_found(call_id)
    return body


async def get_transcript(session: AsyncSession, principal: Principal, call_id: uuid.UUID) -> bytes:
    body = await views.transcript(session, principal.org_id, call_id)
    if body is None:
        raise not_found(call_id)
    return body


async def list_calls(
    session: AsyncSession, principal: Principal, query: schemas.CallListQuery
) -> bytes:
    org_id = principal.org_id
    cursor = await resolve_cursor(
        query,
        "call",
        lambda call_id, newer: repository.get_cursor(session, org_id, call_id, newer),
    )
    filters = {
        name: value
        for name in ("agent_id", "direction", "status")
        if (value := getattr(query, name)) is not None
    }
    return await views.page(session, org_id, filters=filters, cursor=cursor, limit=query.limit)


async def apply(session: AsyncSession, moves: Sequence[Move], carrier: Carrier) -> list[bytes]:
    """Apply moves in the request's transaction; the calls' wire JSON after each that applied."""
    params = steps.apply_params(moves, carrier.rate_milli_cents)
    return [row["body"] for row in await driver_fetch(session, steps.APPLY, params)]


async def locked(session: AsyncSession, principal: Principal, call_id: uuid.UUID) -> CallState:
    state = await repository.lock_state(session, principal.org_id, call_id)
    if state is None:
        raise not_found(call_id)
    return state


async def cancel_call(
    session: AsyncSession, principal: Principal, call_id: uuid.UUID, carrier: Carrier
) -> bytes:
    state = await locked(session, principal, call_id)
    if state.status not in CANCELABLE:
        raise CallNotCancelable(
            f"call {call_id} is {state.status}: only a call that has not been answered "
            "can be canceled"
        )
    await carrier.cancel(state)
    event = CarrierEvent("canceled", hangup_cause="canceled")
    (body,) = await apply(session, [Move(call_id, principal.org_id, state.status, event)], carrier)
    return body
