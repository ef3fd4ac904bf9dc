"""Upgrades: `migrate` from several replicas at once, and `serve --no-migrate`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from callingbox_server.core.migrate import MIGRATION_LOCK_ID
from tests.fixtures.database import TABLES, asyncpg_dsn, new_database, table_names
from tests.fixtures.servers import (
    COMMAND_TIMEOUT,
    Server,
    clean_environment,
    run_cli,
    server_env,
    start_server,
)

REPLICAS = 4

pytestmark = pytest.mark.system


@pytest.fixture
def fresh_database(database_url: str) -> Iterator[str]:
    """An empty database, never migrated."""
    with new_database(database_url, "callingbox_upgrade", migrated=False) as url:
        yield url


def migrate_process(database_url: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "callingbox_server.cli", "migrate"],
        env=server_env(database_url),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows: list[asyncpg.Record] = await connection.fetch(query)
    finally:
        await connection.close()
    return rows


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
    return process.returncode, stderr


# PostgreSQL splits a bigint advisory lock key into classid (high half) and objid (low half).
QUEUED_ON_THE_LOCK = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted
      AND classid::bigint = $1 AND objid::bigint = $2
"""


class TestConcurrentMigrate:
    async def test_replicas_released_together_migrate_one_after_another(
        self, fresh_database: str, tmp_path: Path
    ) -> None:
        # Without the lock, replicas that start together fail on each other's CREATE TABLE
        # (duplicate key in pg_type). Here the test holds the lock until every replica queues on
        # it, then lets them all go at once.
        holder = await asyncpg.connect(asyncpg_dsn(fresh_database))
        key = (MIGRATION_LOCK_ID >> 32, MIGRATION_LOCK_ID & 0xFFFFFFFF)
        try:
            await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
            processes = [migrate_process(fresh_database, tmp_path) for _ in range(REPLICAS)]
            for _ in range(1200):
                if await holder.fetchval(QUEUED_ON_THE_LOCK, *key) == REPLICAS:
                    break
                for process in processes:
                    assert process.poll() is None, finish(process)
                await asyncio.sleep(0.1)
            assert await holder.fetchval(QUEUED_ON_THE_LOCK, *key) == REPLICAS
            assert await table_names(fresh_database) == set(), "migrated without the lock"
        finally:
            await holder.close()  # releases the lock

        results = await asyncio.gather(*(asyncio.to_thread(finish, p) for p in processes))

        for returncode, stderr in results:
            assert returncode == 0, stderr
        assert await table_names(fresh_database) == TABLES
        versions = await fetch(fresh_database, "SELECT version_num FROM alembic_version")
        assert len(versions) == 1


class TestServeNoMigrate:
    async def test_serves_without_touching_the_schema(
        self, fresh_database: str, tmp_path: Path, servers: list[Server]
    ) -> None:
        server = start_server(server_env(fresh_database), tmp_path, options=["--no-migrate"])
        servers.append(server)
        await asyncio.to_thread(server.wait_ready)

        assert await table_names(fresh_database) == set()

    def test_is_refused_on_the_embedded_database(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "data"
        env = clean_environment(CALLINGBOX_DATA_DIR=str(data_dir))
        result = run_cli("serve", "--no-migrate", env=env, cwd=tmp_path)

        assert result.returncode == 2
        assert "--no-migrate is for an external database" in result.stderr
        assert "Traceback" not in result.stderr
        assert not data_dir.exists(), "no embedded database was started"
