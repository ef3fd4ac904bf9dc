"""core.db.driver: statements on the asyncpg connection send values as SQLAlchemy would."""

from __future__ import annotations

import uuid

from sqlalchemy import Text, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from callingbox_server.core import models
from callingbox_server.core.db.driver import driver_fetch, for_driver

AGENTS = models.Agent.__table__
ORGS = models.Org.__table__
# Deliberately not in alphabetical order, and a float pydantic writes in its own way.
RETURNS = {"when": "string", "confirmed": "boolean"}
TOOLS = [{"type": "builtin", "name": "x", "config": {"tiny": 1e-07}}]


class TestEncoders:
    def test_json_given_at_each_call_is_encoded_and_a_literal_once(self) -> None:
        statement = for_driver(
            insert(AGENTS).values(returns=bindparam("returns"), tools=[{"a": 1}])
        )

        assert set(statement.encoders) == {"returns", "tools"}
        assert statement.encoders["returns"](RETURNS) == '{"when":"string","confirmed":"boolean"}'
        assert statement.built_with["tools"] == '[{"a":1}]'

    def test_columns_that_convert_nothing_get_no_encoder(self) -> None:
        statement = for_driver(select(AGENTS.c.id).where(AGENTS.c.name == bindparam("name")))

        assert statement.encoders == {}


class TestWrites:
    async def test_json_is_stored_as_the_api_sent_it(
        self,
        connection: AsyncConnection,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        org_id, agent_id = uuid.uuid4(), uuid.uuid4()
        await connection.execute(insert(ORGS).values(id=org_id, name=f"driver-{org_id}"))
        names = ("id", "org_id", "user_id", "name", "type", "returns", "tools")
        statement = for_driver(insert(AGENTS).values({n: bindparam(n) for n in names}))
        values = {
            "id": agent_id,
            "org_id": org_id,
            "user_id": "key",
            "name": "Driver",
            "type": "outbound",
            "returns": RETURNS,
            "tools": TOOLS,
        }

        async with sessionmaker() as session:
            await driver_fetch(session, statement, values)
            stored = (
                await session.execute(
                    select(
                        AGENTS.c.returns.cast(Text),
                        AGENTS.c.tools.cast(Text),
                        AGENTS.c.voicemail_action,
                    ).where(AGENTS.c.id == agent_id)
                )
            ).one()

        assert tuple(stored) == (
            '{"when":"string","confirmed":"boolean"}',
            '[{"type":"builtin","name":"x","config":{"tiny":1e-7}}]',
            "hangup",
        )
