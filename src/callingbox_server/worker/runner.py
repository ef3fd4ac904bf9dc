"""The background worker: runs the domains' background jobs against the database.

It runs inside every ``serve`` process by default (``CALLINGBOX_SERVE_RUNS_WORKER``), and alone as
``callingbox-server worker`` for deployments that scale API processes and workers apart. Any
number of workers may run against one database: every job is safe to run in several at once.

Two kinds of job: periodic ones (``JOBS``), and due work (``due_work``: rows with a due time,
claimed as soon as they are due; see ``queue.py``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.core.config import Settings
from callingbox_server.core.db.engine import create_engine
from callingbox_server.core.metrics import Metrics
from callingbox_server.domains.calls.carriers import create_carrier
from callingbox_server.domains.calls.steps import record_inline_webhook
from callingbox_server.domains.calls.tasks import CallSteps
from callingbox_server.domains.idempotency.tasks import prune_expired
from callingbox_server.domains.webhooks.tasks import WebhookWork
from callingbox_server.worker.queue import DueWork, QueueRunner

logger = logging.getLogger("callingbox_server")


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """A job the worker runs every ``interval`` seconds, the first time at start."""

    name: str
    interval: float
    run: Callable[[AsyncEngine], Awaitable[None]]


JOBS: Sequence[PeriodicJob] = (PeriodicJob("prune idempotency keys", 3600.0, prune_expired),)


def due_work(settings: Settings, metrics: Metrics | None) -> list[DueWork]:
    """Every domain's due work, built from the settings (and reporting to ``metrics``, when on)."""
    webhooks = WebhookWork(
        retry_scale=settings.webhook_retry_scale,
        allow_private=settings.webhooks_allow_private,
        metrics=metrics,
        on_inline_outcome=record_inline_webhook,
    )
    return [CallSteps(create_carrier(settings), metrics), webhooks]


async def _every(job: PeriodicJob, engine: AsyncEngine) -> None:
    while True:
        try:
            await job.run(engine)
        except Exception as exc:  # an outage must not end the loop: the next round retries
            logger.warning("background job %r failed: %r", job.name, exc)
        await asyncio.sleep(job.interval)


class Worker:
    """Every job's loop, started together and stopped together."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        metrics: Metrics | None = None,
        jobs: Sequence[PeriodicJob] = JOBS,
    ) -> None:
        self.engine = engine
        self.jobs = jobs
        works = due_work(settings, metrics)
        # The due work's own connections go to the engine's database, outside its pool.
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.queues = (
            QueueRunner(
                dsn,
                works,
                pool_size=settings.worker_pool_size,
                poll_interval=settings.worker_poll_interval,
                connect_timeout=settings.db_connect_timeout,
            )
            if works
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(_every(job, self.engine)) for job in self.jobs]
        if self.queues is not None:
            self._tasks.append(asyncio.create_task(self.queues.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def run_until(self, stopped: asyncio.Event) -> None:
        """Run until ``stopped`` is set (``callingbox-server worker`` sets it on SIGTERM)."""
        self.start()
        try:
            await stopped.wait()
        finally:
            await self.stop()


async def run_alone(database_url: str, settings: Settings) -> None:
    """``callingbox-server worker``: the jobs, until SIGTERM or SIGINT, then a clean stop."""
    engine = create_engine(database_url, settings)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    worker = Worker(engine, settings)
    names = [job.name for job in worker.jobs]
    names += [work.name for work in worker.queues.works] if worker.queues else []
    logger.info("worker started: %s", ", ".join(names))
    try:
        await worker.run_until(stopped)
    finally:
        await engine.dispose()
    logger.info("worker stopped")
