"""Alembic environment: async engine, URL from the callingbox settings (or the caller)."""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from callingbox_server.core import models
from callingbox_server.core.config import get_settings
from callingbox_server.core.migrate import MIGRATION_LOCK_ID
from callingbox_server.core.runtime import resolve_runtime

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = models.Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    return url or resolve_runtime(get_settings()).database_url


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        # Before Alembic reads the current version: a second migrator waits here for the first
        # to commit, then sees the new version. The lock goes with the transaction.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
