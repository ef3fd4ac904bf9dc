"""Liveness and readiness: `/healthz` (the process is up), `/readyz` (the database answers)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.api.middleware import RETRY_AFTER_SECONDS
from callingbox_server.api.openapi import example
from callingbox_server.core.errors import ErrorBody, ServiceUnavailable

READY_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["health"])

_UNREADY: dict[str, Any] = {
    "model": ErrorBody,
    "description": "The database does not answer.",
    **example(
        {
            "error": "the database is unavailable",
            "code": "unavailable",
            "request_id": "2b0c9e6e-8a53-4d4e-9f1c-3c5a7e1d9b10",
        }
    ),
}


@router.get(
    "/healthz",
    summary="Check that the process is up",
    responses={200: example({"status": "ok"})},
)
async def healthz() -> dict[str, str]:
    """The process is up (no database check)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Check that the database answers",
    responses={200: example({"status": "ready"}), 503: _UNREADY},
)
async def readyz(request: Request) -> dict[str, str]:
    """The database answers."""
    engine: AsyncEngine = request.app.state.engine
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable(
            "the database is unavailable", headers={"Retry-After": RETRY_AFTER_SECONDS}
        ) from exc
    return {"status": "ready"}
