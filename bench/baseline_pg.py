"""The physical limit: the same two routes as bench/baseline.py, with PostgreSQL writing the JSON.

One statement per request checks the key by its HMAC (through the unique index) and renders the
agent with its numbers (or the whole list page) as JSON text with ``row_to_json``, handed to the
client as the bytes asyncpg received: no Python decoding, no serializer, no layers. It sends the
server's exact bytes (tests/test_bench_baseline.py). What the server costs beyond this is the
price of its layers.

Run it as uvicorn does: ``uvicorn bench.baseline_pg:app_from_env --factory`` with
BENCH_BASELINE_DATABASE_URL and BENCH_BASELINE_KEY_HASH_SECRET set.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_KEY_SHAPE = re.compile(r"sk_(?:live|test)_[A-Za-z0-9_\-]{32,128}")
_JSON = "application/json; charset=utf-8"
_TS = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""

# Spelled out by hand (the server composes the same shape from its schemas): a number, and an
# agent with its numbers in attach order, as their wire JSON.
NUMBER_JSON = f"""
row_to_json((SELECT x FROM (SELECT n.id, n.e164, n.friendly_name, n.country_code, n.number_type,
  n.status, n.monthly_cost_cents, to_char(timezone('UTC', n.purchased_at), {_TS}) AS purchased_at,
  (SELECT i.agent_id FROM agent_numbers i
   WHERE i.number_id = n.id AND i.agent_type = 'inbound') AS inbound_agent_id,
  coalesce((SELECT array_agg(o.agent_id ORDER BY o.seq) FROM agent_numbers o
            WHERE o.number_id = n.id AND o.agent_type = 'outbound'), '{{}}') AS outbound_agent_ids
) x))"""
AGENT_JSON = f"""
convert_to(row_to_json((SELECT x FROM (SELECT a.id, a.org_id, a.user_id, a.name, a.type,
  a.persona, a.instructions, a.voice, a.language, a.returns, a.tools, a.webhook_url,
  a.voicemail_action, a.primary_number_id,
  to_char(timezone('UTC', a.archived_at), {_TS}) AS archived_at,
  to_char(timezone('UTC', a.created_at), {_TS}) AS created_at,
  to_char(timezone('UTC', a.updated_at), {_TS}) AS updated_at,
  (SELECT coalesce(array_to_json(array_agg({NUMBER_JSON} ORDER BY l.seq)), '[]'::json)
   FROM agent_numbers l JOIN numbers n ON n.id = l.number_id WHERE l.agent_id = a.id) AS numbers
) x))::text, 'UTF8')"""
KEY = """
SELECT org_id FROM api_keys
WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""
# The key and the object in one round trip: no row at all means an unknown key.
GET_AGENT = f"""
SELECT k.org_id, (SELECT {AGENT_JSON} FROM agents a WHERE a.org_id = k.org_id AND a.id = $2)
FROM ({KEY}) k
"""
FIRST_PAGE = f"""
SELECT k.org_id, (SELECT array_agg(body ORDER BY created_at DESC, id DESC) FROM (
  SELECT {AGENT_JSON} AS body, a.created_at, a.id FROM agents a
  WHERE a.org_id = k.org_id AND a.archived_at IS NULL
  ORDER BY a.created_at DESC, a.id DESC LIMIT $2) page)
FROM ({KEY}) k
"""
PAGE_AFTER = f"""
SELECT k.org_id, (SELECT array_agg(body ORDER BY created_at DESC, id DESC) FROM (
  SELECT {AGENT_JSON} AS body, a.created_at, a.id FROM agents a, agents c
  WHERE a.org_id = k.org_id AND a.archived_at IS NULL AND c.org_id = k.org_id AND c.id = $3
    AND (a.created_at, a.id) < (c.created_at, c.id)
  ORDER BY a.created_at DESC, a.id DESC LIMIT $2) page),
  EXISTS (SELECT 1 FROM agents c WHERE c.org_id = k.org_id AND c.id = $3)
FROM ({KEY}) k
"""


def _error(status: int, code: str, message: str) -> Response:
    body = f'{{"error":"{message}","code":"{code}","request_id":"{uuid.uuid4()}"}}'
    return Response(body, status_code=status, media_type=_JSON)


def _digest(request: Request) -> bytes | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not _KEY_SHAPE.fullmatch(key):
        return None
    return hmac.new(request.app.state.key_hash_secret, key.encode(), hashlib.sha256).digest()


def _unauthorized() -> Response:
    return _error(401, "unauthorized", "invalid or missing API key")


async def get_agent(request: Request) -> Response:
    digest = _digest(request)
    if digest is None:
        return _unauthorized()
    raw = request.path_params["id"]
    try:
        agent_id = uuid.UUID(raw)
    except ValueError:
        return _error(404, "not_found", f"agent {raw} not found")
    row = await request.app.state.pool.fetchrow(GET_AGENT, digest, agent_id)
    if row is None:
        return _unauthorized()
    if row[1] is None:
        return _error(404, "not_found", f"agent {agent_id} not found")
    return Response(row[1], media_type=_JSON)


async def list_agents(request: Request) -> Response:
    """The default list (live agents, newest first) with limit and starting_after."""
    digest = _digest(request)
    if digest is None:
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
        row = await pool.fetchrow(FIRST_PAGE, digest, limit + 1)
    else:
        row = await pool.fetchrow(PAGE_AFTER, digest, limit + 1, after_id)
    if row is None:
        return _unauthorized()
    if after_id is not None and not row[2]:
        message = f"invalid query parameter starting_after: no such agent {after_id}"
        return _error(400, "invalid_request", message)
    bodies = row[1] or []
    more = b"true" if len(bodies) > limit else b"false"
    return Response(
        b'{"data":[%b],"has_more":%b}' % (b",".join(bodies[:limit]), more), media_type=_JSON
    )


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
