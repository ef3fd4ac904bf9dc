"""The engine: a bounded pool that never hands out a connection known broken."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from callingbox_server.core.config import Settings
from callingbox_server.core.db import outages
from callingbox_server.core.metrics import ObservedPool

APPLICATION_NAME = "callingbox-server"


def create_engine(database_url: str, settings: Settings) -> AsyncEngine:
    """A pool whose every wait is bounded, and that never hands out a connection known broken."""
    engine = create_async_engine(
        database_url,
        poolclass=ObservedPool,  # asyncpg's default pool, reporting waits to the metrics
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        connect_args={
            "timeout": settings.db_connect_timeout,
            # asyncpg's own timeout on every statement, also ROLLBACK and the pool's reset.
            "command_timeout": settings.db_command_timeout,
            "server_settings": {"application_name": APPLICATION_NAME},
        },
    )
    outages.discard_broken_connections(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
