"""The yardstick: GET /v1/agents/{id} and the agents list page, on raw asyncpg and bare Starlette.

It reads the same tables with the same SQL shapes as the server (HMAC key lookup through the
unique index, the agent, its numbers for a whole page in one query) and writes byte-identical JSON
(tests/bench/test_bench_baseline.py holds it to that), but has no layers, no ORM, no transaction
and no validation beyond what the two routes need. The benchmark divides our figures by its figures,
measured alternately in the same session, because absolute figures drift on a shared machine.

Run it as uvicorn does: ``uvicorn bench.baseline:app_from_env --factory`` with
BENCH_BASELINE_DATABASE_URL (a postgresql:// URL) and BENCH_BASELINE_KEY_HASH_SECRET set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pydantic_core
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_KEY_SHAPE = re.compile(r"sk_(?:live|test)_[A-Za-z0-9_\-]{32,128}")
_JSON = "application/json; charset=utf-8"

FIND_KEY = """
SELECT id, org_id, mode FROM api_keys
WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""
# The columns are spelled out in each statement: they are constants, not composed SQL.
GET_AGENT = """
SELECT id, org_id, user_id, name, type, persona, instructions, voice, language, returns, tools,
       webhook_url, voicemail_action, primary_number_id, archived_at, created_at, updated_at
FROM agents WHERE org_id = $1 AND id = $2
"""
AGENT_CURSOR = "SELECT created_at, id FROM agents WHERE org_id = $1 AND id = $2"
FIRST_PAGE = """
SELECT id, org_id, user_id, name, type, persona, instructions, voice, language, returns, tools,
       webhook_url, voicemail_action, primary_number_id, archived_at, created_at, updated_at
FROM agents WHERE org_id = $1 AND archived_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT $2
"""
PAGE_AFTER = """
SELECT id, org_id, user_id, name, type, persona, instructions, voice, language, returns, tools,
       webhook_url, voicemail_action, primary_number_id, archived_at, created_at, updated_at
FROM agents WHERE org_id = $1 AND archived_at IS NULL AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC LIMIT $2
"""
NUMBERS_OF = """
SELECT l.agent_id AS attached_to, n.id, n.e164, n.friendly_name, n.country_code, n.number_type,
       n.status, n.monthly_cost_cents, n.purchased_at,
       (SELECT i.agent_id FROM agent_numbers i
        WHERE i.number_id = n.id AND i.agent_type = 'inbound') AS inbound_agent_id,
       coalesce((SELECT array_agg(o.agent_id ORDER BY o.seq) FROM agent_numbers o
                 WHERE o.number_id = n.id AND o.agent_type = 'outbound'),
                '{}') AS outbound_agent_ids
FROM numbers n JOIN agent_numbers l ON l.number_id = n.id
WHERE l.agent_id = ANY($1::uuid[])
ORDER BY l.seq
"""


def _timestamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _uuid(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _json_column(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _number(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "e164": row["e164"],
        "friendly_name": row["friendly_name"],
        "country_code": row["country_code"],
        "number_type": row["number_type"],
        "status": row["status"],
        "monthly_cost_cents": row["monthly_cost_cents"],
        "purchased_at": _timestamp(row["purchased_at"]),
        "inbound_agent_id": _uuid(row["inbound_agent_id"]),
        "outbound_agent_ids": [str(agent_id) for agent_id in row["outbound_agent_ids"]],
    }


def _agent(row: asyncpg.Record, numbers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "org_id": str(row["org_id"]),
        "user_id": row["user_id"],
        "name": row["name"],
        "type": row["type"],
        "persona": row["persona"],
        "instructions": row["instructions"],
        "voice": row["voice"],
        "language": row["language"],
        "returns": _json_column(row["returns"]),
        "tools": _json_column(row["tools"]),
        "webhook_url": row["webhook_url"],
        "voicemail_action": row["voicemail_action"],
        "primary_number_id": _uuid(row["primary_number_id"]),
        "archived_at": _timestamp(row["archived_at"]),
        "created_at": _timestamp(row["created_at"]),
        "updated_at": _timestamp(row["updated_at"]),
        "numbers": numbers,
    }


async def _render(pool: asyncpg.Pool, rows: Sequence[asyncpg.Record]) -> list[dict[str, Any]]:
    numbers: dict[uuid.UUID, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    if rows:
        for number in await pool.fetch(NUMBERS_OF, list(numbers)):
            numbers[number["attached_to"]].append(_number(number))
    return [_agent(row, numbers[row["id"]]) for row in rows]


def _json(body: Any, status: int = 200) -> Response:
    return Response(pydantic_core.to_json(body), status_code=status, media_type=_JSON)


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": message, "code": code, "request_id": str(uuid.uuid4())}, status)


async def _org_of(request: Request) -> uuid.UUID | None:
    """The caller's org, or None for any auth failure (the same checks as the server's)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _KEY_SHAPE.fullmatch(key):
        return None
    digest = hmac.new(request.app.state.key_hash_secret, key.encode(), hashlib.sha256).digest()
    row = await request.app.state.pool.fetchrow(FIND_KEY, digest)
    return None if row is None else row["org_id"]


def _unauthorized() -> Response:
    return _error(401, "unauthorized", "invalid or missing API key")


async def get_agent(request: Request) -> Response:
    org_id = await _org_of(request)
    if org_id is None:
        return _unauthorized()
    raw = request.path_params["id"]
    try:
        agent_id = uuid.UUID(raw)
    except ValueError:
        return _error(404, "not_found", f"agent {raw} not found")
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(GET_AGENT, org_id, agent_id)
    if row is None:
        return _error(404, "not_found", f"agent {agent_id} not found")
    return _json((await _render(pool, [row]))[0])


async def list_agents(request: Request) -> Response:
    """The default list (live agents, newest first) with limit and starting_after."""
    org_id = await _org_of(request)
    if org_id is None:
        return _unauthorized()
    try:
        limit = int(request.query_params.get("limit", "20"))
        after = request.query_params.get("starting_after")
        after_id = None if after is None else uuid.UUID(after)
    except ValueError:
        return _error(400, "invalid_request", "invalid query parameter")
    if not 1 <= limit <= 100:
        return _error(400, "invalid_request", "invalid query parameter limit")
    pool: asyncpg.Pool = request.app.state.pool
    if after_id is None:
        rows = await pool.fetch(FIRST_PAGE, org_id, limit + 1)
    else:
        cursor = await pool.fetchrow(AGENT_CURSOR, org_id, after_id)
        if cursor is None:
            message = f"invalid query parameter starting_after: no such agent {after_id}"
            return _error(400, "invalid_request", message)
        rows = await pool.fetch(PAGE_AFTER, org_id, limit + 1, cursor["created_at"], cursor["id"])
    data = await _render(pool, rows[:limit])
    return _json({"data": data, "has_more": len(rows) > limit})


def create_app(database_url: str, key_hash_secret: bytes, pool_size: int = 10) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with asyncpg.create_pool(
            database_url, min_size=pool_size, max_size=pool_size
        ) as pool:
            app.state.pool = pool
            yield

    app = Starlette(
        routes=[Route("/v1/agents", list_agents), Route("/v1/agents/{id}", get_agent)],
        lifespan=lifespan,
    )
    app.state.key_hash_secret = key_hash_secret
    return app


def app_from_env() -> Starlette:
    return create_app(
        os.environ["BENCH_BASELINE_DATABASE_URL"],
        os.environ["BENCH_BASELINE_KEY_HASH_SECRET"].encode(),
        int(os.environ.get("BENCH_BASELINE_POOL_SIZE", "10")),
    )
