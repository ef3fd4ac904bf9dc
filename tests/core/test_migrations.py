"""Migrations are reversible and match the models: upgrade, check, downgrade, upgrade."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command
from sqlalchemy import make_url

from callingbox_server.core import migrate, models
from tests.fixtures.database import admin_execute, asyncpg_dsn

# Every table of the models, which the migrations must create (alembic check compares the rest).
TABLES = set(models.Base.metadata.tables)
assert {"orgs", "api_keys", "numbers", "agents", "agent_numbers", "events"} <= TABLES


@pytest.fixture
async def scratch_database(database_url: str) -> AsyncIterator[str]:
    name = f"callingbox_migrations_{uuid.uuid4().hex[:12]}"
    await admin_execute(database_url, f'CREATE DATABASE "{name}"')
    yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await admin_execute(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows} - {"alembic_version"}


class TestMigrations:
    async def test_upgrade_check_downgrade_upgrade(self, scratch_database: str) -> None:
        config = migrate.alembic_config(scratch_database)
        await asyncio.to_thread(migrate.upgrade, scratch_database)
        assert await _tables(scratch_database) == TABLES
        # Fails when the models and the migrations have drifted apart.
        await asyncio.to_thread(command.check, config)
        await asyncio.to_thread(migrate.downgrade, scratch_database)
        assert await _tables(scratch_database) == set()
        await asyncio.to_thread(migrate.upgrade, scratch_database)
        assert await _tables(scratch_database) == TABLES


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
