"""The application factory: settings in, a ready FastAPI app out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import text

from callingbox_server.agents.router import router as agents_router
from callingbox_server.config import Settings, get_settings
from callingbox_server.db import create_engine, create_sessionmaker
from callingbox_server.errors import ErrorBody, ServiceUnavailable, install_error_handlers
from callingbox_server.http import RETRY_AFTER_SECONDS, RequestContextMiddleware
from callingbox_server.numbers.providers import create_provider
from callingbox_server.numbers.router import router as numbers_router
from callingbox_server.runtime import resolve_runtime

READY_TIMEOUT_SECONDS = 2.0
DISPOSE_TIMEOUT_SECONDS = 2.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = resolve_runtime(settings)
    engine = create_engine(runtime.database_url, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # Closing waits on each connection's goodbye; an unreachable server must not stall exit.
        with suppress(TimeoutError):
            async with asyncio.timeout(DISPOSE_TIMEOUT_SECONDS):
                await engine.dispose()

    app = FastAPI(
        title="CallingBox API (self-hosted)",
        version=version("callingbox-server"),
        description="The CallingBox v1 agents and numbers API, served by callingbox-server.",
        lifespan=lifespan,
        redoc_url=None,
        # "/v1/agents/" is no route: a 404 JSON error, not a redirect most clients won't follow.
        redirect_slashes=False,
        # Operation ids are the route functions' names: list_agents, attach_number, ...
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.key_hash_secret = runtime.key_hash_secret
    app.state.numbers_provider = create_provider(settings.numbers_provider)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(agents_router)
    app.include_router(numbers_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up (no database check)."""
        return {"status": "ok"}

    unready = {"model": ErrorBody, "description": "The database does not answer."}

    @app.get("/readyz", tags=["health"], responses={503: unready})
    async def readyz() -> dict[str, str]:
        """The database answers."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            raise ServiceUnavailable(
                "the database is unavailable", headers={"Retry-After": RETRY_AFTER_SECONDS}
            ) from exc
        return {"status": "ready"}

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less the 422 responses this API never sends."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas = schema.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema
