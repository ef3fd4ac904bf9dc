"""Prometheus metrics at ``/metrics``: requests by route template, the database pool, build info.

With several uvicorn workers each worker is a process of its own, and the one that answers a
scrape must report every worker's counts: prometheus-client's multiprocess mode keeps the values in
``PROMETHEUS_MULTIPROC_DIR`` (``serve`` sets it up) and adds them up at scrape time.
"""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from callingbox_server.core.db import outages

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Label values must stay few: any other method a client invents is counted as "other", and a
# request that no route answered (an unknown path, a body refused before routing) as "unmatched".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
LABELS = ("method", "route", "status")


def method_label(method: str) -> str:
    return method if method in METHODS else "other"


class ObservedPool(AsyncAdaptedQueuePool):
    """The default asyncpg pool, telling ``on_wait`` (+1, then -1) about each checkout in progress:
    one waiting for a free connection, or for a new one to open."""

    on_wait: Callable[[int], None] | None = None
    # Log as the pool it extends: under "sqlalchemy", which SQLAlchemy keeps at WARNING.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"

    def _do_get(self) -> ConnectionPoolEntry:
        on_wait = self.on_wait
        returned_before, late_before = outages.checkins(), outages.lateness()
        began = time.monotonic()
        if on_wait is not None:
            on_wait(1)
        try:
            return super()._do_get()
        except exc.TimeoutError as error:
            # How many connections came back meanwhile tells a busy pool from a stalled one.
            returned = outages.checkins() - returned_before
            waited, late = time.monotonic() - began, outages.lateness() - late_before
            raise outages.PoolWaitTimedOut(str(error), returned, waited, late) from error
        finally:
            if on_wait is not None:
                on_wait(-1)

    def recreate(self) -> ObservedPool:
        # engine.dispose() swaps in a fresh pool: keep reporting from it.
        pool = super().recreate()
        assert isinstance(pool, ObservedPool)
        pool.on_wait = self.on_wait
        return pool


class Metrics:
    """One app's metrics; in multiprocess mode their values live in files, read at scrape time."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_DIR_ENV))
        self.registry = CollectorRegistry()
        # In multiprocess mode the metrics write to files and the collector reads them all back;
        # otherwise they live in this registry, beside the process, platform and GC metrics.
        target: CollectorRegistry | None = None
        if self.multiprocess:
            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]  # untyped upstream
        else:
            target = self.registry
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        # Where a domain's own metrics register (``Counter(..., registry=metrics.target)``).
        self.target = target
        self.requests = Counter(
            "callingbox_http_requests",
            "HTTP requests answered, by method, route template and status.",
            LABELS,
            registry=target,
        )
        self.duration = Histogram(
            "callingbox_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            LABELS,
            registry=target,
        )
        self.pool_in_use = Gauge(
            "callingbox_db_pool_connections_in_use",
            "Database connections checked out of the pool.",
            registry=target,
            multiprocess_mode="livesum",
        )
        self.pool_waiting = Gauge(
            "callingbox_db_pool_waiting",
            "Requests waiting for a database connection (a free one, or a new one to open).",
            registry=target,
            multiprocess_mode="livesum",
        )
        # Webhooks (domains/webhooks/tasks.py), from the worker in this process.
        self.webhook_attempts = Counter(
            "callingbox_webhook_attempts",
            "Webhook delivery attempts, by outcome (succeeded: a 2xx; failed: anything else).",
            ["outcome"],
            registry=target,
        )
        self.webhook_pending = Gauge(
            "callingbox_webhook_deliveries_pending",
            "Webhook deliveries not yet delivered or exhausted (all processes; sampled).",
            registry=target,
            multiprocess_mode="max",
        )
        self.webhook_lag = Histogram(
            "callingbox_webhook_delivery_lag_seconds",
            "From an event's commit to the first attempt of each of its deliveries.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=target,
        )
        build = Gauge(
            "callingbox_build_info",
            "Always 1; the labels say which build is running.",
            ["version", "python"],
            registry=target,
            multiprocess_mode="max",
        )
        build.labels(version("callingbox-server"), platform.python_version()).set(1)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method_label(method), route, str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)

    def observe_pool(self, engine: AsyncEngine) -> None:
        pool = engine.sync_engine.pool

        def checked_out(*_: Any) -> None:
            self.pool_in_use.inc()

        def checked_in(*_: Any) -> None:
            self.pool_in_use.dec()

        event.listen(pool, "checkout", checked_out)
        event.listen(pool, "checkin", checked_in)
        if isinstance(pool, ObservedPool):
            pool.on_wait = self.pool_waiting.inc

    def close(self) -> None:
        """Drop this process's live gauges from the shared files (the process is going away)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]  # untyped upstream

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The scrape body and its content type: the text format, or OpenMetrics for a
        scraper that asks for it in ``Accept``."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def prepare_multiprocess_dir(workers: int) -> None:
    """For ``serve``: with several workers, an empty PROMETHEUS_MULTIPROC_DIR they all share.

    An operator's own directory is used (and emptied: counts from an earlier run must not carry
    over); otherwise a temporary one is made and removed when ``serve`` exits.
    """
    configured = os.environ.get(MULTIPROC_DIR_ENV)
    if not configured and workers == 1:
        return
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="callingbox-metrics-"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    os.environ[MULTIPROC_DIR_ENV] = str(path)
