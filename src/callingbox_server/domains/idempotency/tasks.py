"""Background work of idempotency keys: forgetting them after their retention."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.domains.idempotency import repository

logger = logging.getLogger("callingbox_server")


async def prune_expired(engine: AsyncEngine) -> None:
    """Delete keys past their retention. Any number of workers may run it at once: deleting the
    same old rows twice is harmless."""
    async with engine.begin() as connection:
        pruned = await repository.prune(connection)
    if pruned:
        logger.info("pruned %d idempotency keys older than 24 hours", pruned)
