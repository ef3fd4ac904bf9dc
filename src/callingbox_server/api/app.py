"""The application factory: settings in, a ready FastAPI app out."""

from __future__ import annotations

import asyncio
import gc
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from pydantic import SecretStr
from starlette.responses import Response

from callingbox_server.api import health, openapi
from callingbox_server.api.direct import DirectRoutes
from callingbox_server.api.exception_handlers import install_error_handlers
from callingbox_server.api.middleware import RequestContextMiddleware
from callingbox_server.core.config import Settings, get_settings
from callingbox_server.core.db import outages
from callingbox_server.core.db.engine import create_engine, create_sessionmaker
from callingbox_server.core.fair_share import FairShare
from callingbox_server.core.logs import configure_logging, install_log_redaction
from callingbox_server.core.metrics import Metrics
from callingbox_server.core.runtime import resolve_runtime
from callingbox_server.domains.agents.router import DIRECT as agents_direct
from callingbox_server.domains.agents.router import router as agents_router
from callingbox_server.domains.calls.carriers import create_carrier
from callingbox_server.domains.calls.router import router as calls_router
from callingbox_server.domains.calls.router import test_helpers_router
from callingbox_server.domains.numbers.providers import create_provider
from callingbox_server.domains.numbers.router import router as numbers_router
from callingbox_server.domains.webhooks import router as webhooks
from callingbox_server.worker.runner import Worker

DISPOSE_TIMEOUT_SECONDS = 2.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    runtime = resolve_runtime(settings)
    engine = create_engine(runtime.database_url, settings)
    metrics = Metrics() if settings.metrics_enabled else None
    if metrics is not None:
        metrics.observe_pool(engine)
    worker = Worker(engine, settings, metrics) if settings.serve_runs_worker else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # How late the loop runs tells a busy process from a stalled database (core/db/outages).
        watch = asyncio.create_task(outages.watch_event_loop(), name="event-loop-watch")
        if worker is not None:
            worker.start()
        yield
        if worker is not None:
            await worker.stop()
        watch.cancel()
        with suppress(asyncio.CancelledError):
            await watch
        # Closing waits on each connection's goodbye; an unreachable server must not stall exit.
        with suppress(TimeoutError):
            async with asyncio.timeout(DISPOSE_TIMEOUT_SECONDS):
                await engine.dispose()
        if metrics is not None:
            metrics.close()

    # /docs serves Swagger UI's script, stylesheet and icon from the fastapi-offline package
    # (under /static-offline-docs), not from a CDN: the page works with no network at all.
    app = FastAPIOffline(
        title="CallingBox API (self-hosted)",
        version=version("callingbox-server"),
        description="The CallingBox v1 agents, numbers and calls API, served by callingbox-server.",
        lifespan=lifespan,
        redoc_url=None,
        # "/v1/agents/" is no route: a 404 JSON error, not a redirect most clients won't follow.
        redirect_slashes=False,
        # Operation ids are the route functions' names: list_agents, attach_number, ...
        generate_unique_id_function=lambda route: route.name,
        # FastAPI's built-in OpenTelemetry bridge asks three provider registries on every
        # request whether anyone listens; nobody does here (/metrics is ours).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Swagger UI would otherwise send the document to an online validator.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.key_hash_secret = runtime.key_hash_secret
    app.state.numbers_provider = create_provider(settings.numbers_provider)
    app.state.carrier = create_carrier(settings)
    app.state.webhook_allow_private = settings.webhooks_allow_private
    install_log_redaction()
    app.state.fair_share = FairShare(
        settings.org_concurrency, settings.org_rate_limit, settings.org_queue_timeout
    )
    install_error_handlers(app)
    # Added first, so it runs inside the request context (its id, limits, outages, log line).
    app.add_middleware(DirectRoutes, routers=[(agents_router, agents_direct)])
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_query_parameters=settings.max_query_parameters,
        fair_share=app.state.fair_share,
        metrics=metrics,
    )
    app.include_router(agents_router)
    app.include_router(numbers_router)
    app.include_router(calls_router)
    if settings.test_helpers and app.state.carrier.test_helpers:
        app.include_router(test_helpers_router)
    app.include_router(webhooks.endpoints)
    app.include_router(webhooks.deliveries)
    if metrics is not None:

        async def scrape(request: Request) -> Response:
            body, content_type = metrics.exposition(request.headers.get("accept", ""))
            return Response(body, headers={"Content-Type": content_type})

        # Prometheus text, not JSON, and no part of the API: left out of the OpenAPI document.
        app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
    app.include_router(health.router)
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
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
        database_url="postgresql://openapi@localhost/openapi",
        key_hash_secret=unused_secret,
        serve_runs_worker=False,
    )
    return create_app(settings).openapi()
