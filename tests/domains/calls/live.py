"""Calls on real server processes: an org set up over HTTP, and the outbox read directly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
import httpx

from tests.fixtures.database import asyncpg_dsn
from tests.fixtures.numbers import area_code, phone

TERMINAL = {"completed", "no_answer", "busy", "canceled", "failed"}
# What each path writes, once each (section 6: one event per transition in the catalog).
COMPLETED_EVENTS = ["call.queued", "call.ringing", "call.answered", "call.completed"]


def client(base_url: str, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(30.0),
        # Below uvicorn's keep-alive timeout (5 s): never reuse a connection the server is closing.
        limits=httpx.Limits(max_connections=50, keepalive_expiry=2.0),
    )


async def outbound_agent(http: httpx.AsyncClient) -> dict[str, Any]:
    """An outbound agent with a number of its own (from an area code no other test uses)."""
    r = await http.post("/v1/numbers/purchase", json={"phone_number": phone(0, area_code())})
    assert r.status_code == 201, r.text
    r = await http.post(
        "/v1/agents",
        json={"name": "Live", "type": "outbound", "number_ids": [r.json()["id"]]},
    )
    assert r.status_code == 201, r.text
    agent: dict[str, Any] = r.json()
    return agent


async def events_by_call(database_url: str, call_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each call's event types, in the order written."""
    ids = list(call_ids)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "SELECT call_id::text AS call_id, type FROM events WHERE call_id = ANY($1::uuid[]) "
            "ORDER BY created_at",
            ids,
        )
    finally:
        await connection.close()
    found: dict[str, list[str]] = {call_id: [] for call_id in ids}
    for row in rows:
        found[row["call_id"]].append(row["type"])
    return found


async def wait_terminal(
    http: httpx.AsyncClient, call_ids: list[str], within: float
) -> dict[str, dict[str, Any]]:
    """Poll until every call is terminal (bounded); returns the calls."""
    deadline = time.monotonic() + within
    calls: dict[str, dict[str, Any]] = {}
    while True:
        pending = [
            call_id for call_id in call_ids if calls.get(call_id, {}).get("status") not in TERMINAL
        ]
        if not pending:
            return calls
        responses = await asyncio.gather(*(http.get(f"/v1/calls/{call_id}") for call_id in pending))
        for call_id, r in zip(pending, responses, strict=True):
            assert r.status_code == 200, r.text
            calls[call_id] = r.json()
        if time.monotonic() > deadline:
            stuck = {c: calls[c]["status"] for c in pending if calls[c]["status"] not in TERMINAL}
            raise AssertionError(f"calls not terminal after {within}s: {stuck}")
        await asyncio.sleep(0.1)


async def wait_status(
    http: httpx.AsyncClient, call_id: str, *statuses: str, within: float = 10
) -> str:
    """Poll until the call is in one of ``statuses`` (bounded); returns that status."""
    deadline = time.monotonic() + within
    while (current := (await http.get(f"/v1/calls/{call_id}")).json()["status"]) not in statuses:
        if time.monotonic() > deadline:
            raise AssertionError(f"call {call_id} is {current}, not {statuses}, after {within}s")
        await asyncio.sleep(0.02)
    return current
