"""Migrations are reversible and match the models: upgrade, check, downgrade, upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest
from alembic import command

from callingbox_server.core import migrate
from tests.fixtures.database import TABLES, asyncpg_dsn, new_database, table_names

# The migrations must create every table of the models (alembic check compares the rest).
assert {"orgs", "api_keys", "numbers", "agents", "agent_numbers", "events"} <= TABLES


@pytest.fixture
def scratch_database(database_url: str) -> Iterator[str]:
    with new_database(database_url, "callingbox_migrations", migrated=False) as url:
        yield url


class TestMigrations:
    async def test_upgrade_check_downgrade_upgrade(self, scratch_database: str) -> None:
        config = migrate.alembic_config(scratch_database)
        await asyncio.to_thread(migrate.upgrade, scratch_database)
        assert await table_names(scratch_database) == TABLES
        # Fails when the models and the migrations have drifted apart.
        await asyncio.to_thread(command.check, config)
        await asyncio.to_thread(migrate.downgrade, scratch_database)
        assert await table_names(scratch_database) == set()
        await asyncio.to_thread(migrate.upgrade, scratch_database)
        assert await table_names(scratch_database) == TABLES


async def _execute(url: str, statement: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows: list[asyncpg.Record] = await connection.fetch(statement, *args)
    finally:
        await connection.close()
    return rows


BEFORE_ORG_NAME_RULES = "e6f10c0a1b2c"
ADD_ORG = "INSERT INTO orgs (id, name) VALUES (gen_random_uuid(), $1)"


class TestOrgNameMigration:
    async def test_trims_existing_names_and_makes_them_unique_whatever_their_case(
        self, scratch_database: str
    ) -> None:
        await asyncio.to_thread(migrate.upgrade, scratch_database, BEFORE_ORG_NAME_RULES)
        for name in (" Acme ", "globex\t"):
            await _execute(scratch_database, ADD_ORG, name)

        await asyncio.to_thread(migrate.upgrade, scratch_database)

        rows = await _execute(scratch_database, "SELECT name FROM orgs")
        assert sorted(row["name"] for row in rows) == ["Acme", "globex"]
        with pytest.raises(asyncpg.UniqueViolationError, match="uq_orgs_lower_name"):
            await _execute(scratch_database, ADD_ORG, "ACME")

    async def test_stops_on_names_that_differ_only_in_case_and_names_them(
        self, scratch_database: str
    ) -> None:
        await asyncio.to_thread(migrate.upgrade, scratch_database, BEFORE_ORG_NAME_RULES)
        for name in ("Acme", "acme ", "globex"):
            await _execute(scratch_database, ADD_ORG, name)

        with pytest.raises(RuntimeError) as raised:
            await asyncio.to_thread(migrate.upgrade, scratch_database)

        assert str(raised.value) == (
            "these organizations differ only in case or surrounding spaces, which the new unique "
            "index forbids: 'Acme', 'acme '. Rename all but one of each (the name column of the "
            "orgs table), then migrate again."
        )
        rows = await _execute(scratch_database, "SELECT name FROM orgs")
        assert sorted(row["name"] for row in rows) == ["Acme", "acme ", "globex"], "unchanged"
