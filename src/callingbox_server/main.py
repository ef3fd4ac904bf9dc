"""The application factory: settings in, a ready FastAPI app out."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server import idempotency
from callingbox_server.agents.router import router as agents_router
from callingbox_server.config import Settings, get_settings
from callingbox_server.db import create_engine, create_sessionmaker
from callingbox_server.errors import ErrorBody, ServiceUnavailable, install_error_handlers
from callingbox_server.http import (
    RETRY_AFTER_SECONDS,
    RequestContextMiddleware,
    install_log_redaction,
)
from callingbox_server.logs import configure_logging
from callingbox_server.metrics import Metrics
from callingbox_server.numbers.providers import create_provider
from callingbox_server.numbers.router import router as numbers_router
from callingbox_server.openapi import restore_example_nulls
from callingbox_server.runtime import resolve_runtime

READY_TIMEOUT_SECONDS = 2.0
DISPOSE_TIMEOUT_SECONDS = 2.0
PRUNE_INTERVAL_SECONDS = 3600.0
logger = logging.getLogger("callingbox_server")


async def _prune_idempotency_keys(engine: AsyncEngine) -> None:
    """Hourly, in every worker: deleting the same old rows twice is harmless."""
    while True:
        try:
            async with engine.begin() as connection:
                pruned = await idempotency.prune(connection)
            if pruned:
                logger.info("pruned %d idempotency keys older than 24 hours", pruned)
        except Exception as exc:  # an outage must not end the loop: the next hour retries
            logger.warning("pruning idempotency keys failed: %r", exc)
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = resolve_runtime(settings)
    engine = create_engine(runtime.database_url, settings)
    metrics = Metrics() if settings.metrics_enabled else None
    if metrics is not None:
        metrics.observe_pool(engine)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pruner = asyncio.create_task(_prune_idempotency_keys(engine))
        yield
        pruner.cancel()
        with suppress(asyncio.CancelledError):
            await pruner
        # Closing waits on each connection's goodbye; an unreachable server must not stall exit.
        with suppress(TimeoutError):
            async with asyncio.timeout(DISPOSE_TIMEOUT_SECONDS):
                await engine.dispose()
        if metrics is not None:
            metrics.close()

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
        # FastAPI's built-in OpenTelemetry bridge asks three provider registries on every
        # request whether anyone listens; nobody does here (/metrics is ours).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.key_hash_secret = runtime.key_hash_secret
    app.state.numbers_provider = create_provider(settings.numbers_provider)
    install_log_redaction()
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics
    )
    app.include_router(agents_router)
    app.include_router(numbers_router)
    if metrics is not None:
        # Prometheus text, not JSON, and no part of the API: left out of the OpenAPI document.
        app.add_api_route("/metrics", metrics.endpoint, methods=["GET"], include_in_schema=False)

    @app.get(
        "/healthz",
        tags=["health"],
        summary="Check that the process is up",
        responses={200: _example({"status": "ok"})},
    )
    async def healthz() -> dict[str, str]:
        """The process is up (no database check)."""
        return {"status": "ok"}

    unready = {
        "model": ErrorBody,
        "description": "The database does not answer.",
        **_example(
            {
                "error": "the database is unavailable",
                "code": "unavailable",
                "request_id": "2b0c9e6e-8a53-4d4e-9f1c-3c5a7e1d9b10",
            }
        ),
    }

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Check that the database answers",
        responses={200: _example({"status": "ready"}), 503: unready},
    )
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


def serve_app() -> FastAPI:
    """The factory ``serve`` hands uvicorn (once per worker process): logging, then the app."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    # Everything built so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise walk it all and stall requests for tens of ms
    # (https://docs.python.org/3/library/gc.html#gc.freeze).
    gc.collect()
    gc.freeze()
    return app


def openapi_document() -> dict[str, Any]:
    """The document ``/openapi.json`` serves, built without a database: no route runs, and the
    engine connects on first use only, so the URL below is never dialled."""
    unused_secret = SecretStr(secrets.token_urlsafe())  # no key is ever hashed here
    settings = Settings(
        database_url="postgresql://openapi@localhost/openapi", key_hash_secret=unused_secret
    )
    return create_app(settings).openapi()


def _example(value: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": value}}}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, less its validation 422s (ours are 400s; the only 422 is
    ``idempotency_key_reused``)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema["paths"].values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    del responses["422"]
        schemas = schema.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        restore_example_nulls(schema)
        app.openapi_schema = schema
    return app.openapi_schema
