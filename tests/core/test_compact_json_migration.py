"""The migration that stores agents' JSON compact rewrites older rows as the API sent them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pydantic_core
import pytest
from sqlalchemy import make_url

from callingbox_server.core import migrate
from tests.fixtures.database import admin_execute, asyncpg_dsn

BEFORE = "b7e1d2c3a4f5"  # the revision before the rewrite
TOOLS = [{"type": "builtin", "name": "x", "config": {"tiny": 1e-07, "big": 12345678901234567890}}]
RETURNS = {"confirmed": "boolean", "when": "string"}


@pytest.fixture
async def scratch_database(database_url: str) -> AsyncIterator[str]:
    name = f"callingbox_compact_{uuid.uuid4().hex[:12]}"
    await admin_execute(database_url, f'CREATE DATABASE "{name}"')
    yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await admin_execute(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')


class TestCompactJson:
    async def test_older_rows_are_rewritten_as_the_api_sent_them(
        self, scratch_database: str
    ) -> None:
        await asyncio.to_thread(migrate.upgrade, scratch_database, BEFORE)
        connection = await asyncpg.connect(asyncpg_dsn(scratch_database))
        try:
            org = await connection.fetchval(
                "INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), 'o') RETURNING id"
            )
            # As SQLAlchemy's default serializer wrote them: json.dumps, with its spaces.
            await connection.execute(
                "INSERT INTO agents (id, org_id, user_id, name, type, returns, tools) "
                "VALUES (gen_random_uuid(), $1, 'k', 'a', 'inbound', $2::json, $3::json), "
                "(gen_random_uuid(), $1, 'k', 'b', 'inbound', NULL, NULL)",
                org,
                json.dumps(RETURNS),
                json.dumps(TOOLS),
            )
            await asyncio.to_thread(migrate.upgrade, scratch_database)
            rows = await connection.fetch(
                "SELECT name, returns::text AS returns, tools::text AS tools FROM agents "
                "ORDER BY name"
            )
        finally:
            await connection.close()

        assert rows[0]["returns"] == '{"confirmed":"boolean","when":"string"}'
        # What the API always sent for the stored text: decoded and serialized by pydantic.
        assert rows[0]["tools"] == pydantic_core.to_json(TOOLS).decode()
        assert '"tiny":1e-7' in rows[0]["tools"]
        assert json.loads(rows[0]["tools"]) == TOOLS
        assert (rows[1]["returns"], rows[1]["tools"]) == (None, None)
