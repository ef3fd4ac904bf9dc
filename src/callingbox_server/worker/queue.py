"""Due work: background work kept as rows with a due time, carried out as soon as it is due.

Each kind (a call's next step, a webhook delivery) is a ``DueWork`` whose domain does the work
itself in its ``tasks.py``: claims what is due (``FOR UPDATE SKIP LOCKED`` with a lease), acts, and
records. This module only decides *when* to look: at once when a NOTIFY on one of its channels
says work was committed, when the due time it reported comes, and every poll interval in any case,
so a notification sent while no worker listened (or lost with a connection) delays work by one
interval at most and loses nothing.

Each DueWork gets a raw asyncpg pool of its own, apart from the API's: the hot path of a worker
is a few set-based statements, and one kind of work flooding cannot starve another.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol

import asyncpg

logger = logging.getLogger("callingbox_server")

# Distinct from the API's "callingbox-server": tests and operators tell the two apart in
# pg_stat_activity.
WORKER_APPLICATION_NAME = "callingbox-server-worker"
# A worker statement may touch a batch of rows; the API's tight per-statement bound is for requests.
COMMAND_TIMEOUT_SECONDS = 10.0
# The LISTEN connection is checked this often, so one that died silently is noticed and replaced.
LISTENER_CHECK_SECONDS = 15.0
MAX_BACKOFF_SECONDS = 5.0


class DueWork(Protocol):
    """One kind of background work, carried out by its domain."""

    @property
    def name(self) -> str:
        """``calls``, ``webhooks``: for logs."""
        ...

    @property
    def channels(self) -> Sequence[str]:
        """NOTIFY channels whose messages mean new work may be due."""
        ...

    async def run_due(self, db: asyncpg.Pool) -> float | None:
        """Carry out what is due now; return the seconds until the next known due time (0: more
        is due already, call again at once), or None when no due time is known."""
        ...


def _backoff(failures: int) -> float:
    return float(min(MAX_BACKOFF_SECONDS, 0.1 * 2**failures))


class QueueRunner:
    """Runs every DueWork's loop, and the one LISTEN connection that wakes them, until cancelled."""

    def __init__(
        self,
        dsn: str,
        works: Sequence[DueWork],
        *,
        pool_size: int,
        poll_interval: float,
        connect_timeout: float,
    ) -> None:
        self.dsn = dsn
        self.works = works
        self.pool_size = pool_size
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self._wakes = {work.name: asyncio.Event() for work in works}

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._listen())
            for work in self.works:
                group.create_task(self._loop(work, self._wakes[work.name]))

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            command_timeout=COMMAND_TIMEOUT_SECONDS,
            server_settings={"application_name": WORKER_APPLICATION_NAME},
        )

    async def _listen(self) -> None:
        by_channel: dict[str, list[asyncio.Event]] = {}
        for work in self.works:
            for channel in work.channels:
                by_channel.setdefault(channel, []).append(self._wakes[work.name])

        def notified(_: Any, __: int, channel: str, ___: object) -> None:
            for wake in by_channel.get(channel, ()):
                wake.set()

        failures = 0
        while True:
            try:
                connection = await self._connect()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                failures += 1
                logger.warning("worker: cannot listen for new work, retrying: %r", exc)
                await asyncio.sleep(_backoff(failures))
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                for channel in by_channel:
                    await connection.add_listener(channel, notified)
                failures = 0
                # Whatever was committed while nobody listened is looked at now.
                self._wake_all()
                while not lost.is_set():
                    with suppress(TimeoutError):
                        async with asyncio.timeout(LISTENER_CHECK_SECONDS):
                            await lost.wait()
                    if not lost.is_set():
                        await connection.execute("SELECT 1", timeout=self.connect_timeout)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("worker: lost the connection listening for new work: %r", exc)
            finally:
                connection.terminate()

    async def _loop(self, work: DueWork, wake: asyncio.Event) -> None:
        pool: asyncpg.Pool | None = None
        failures = 0
        try:
            while True:
                wake.clear()  # before looking: a NOTIFY during run_due makes us look again
                try:
                    if pool is None:
                        pool = await asyncpg.create_pool(
                            self.dsn,
                            min_size=0,
                            max_size=self.pool_size,
                            timeout=self.connect_timeout,
                            command_timeout=COMMAND_TIMEOUT_SECONDS,
                            server_settings={"application_name": WORKER_APPLICATION_NAME},
                        )
                    delay = await work.run_due(pool)
                    failures = 0
                except Exception as exc:  # an outage must not end the loop: the next round retries
                    failures += 1
                    delay = _backoff(failures)
                    logger.warning(
                        "worker: %s failed, retrying in %.1fs: %r", work.name, delay, exc
                    )
                if delay is not None and delay <= 0:
                    await asyncio.sleep(0)  # let the other loops and the listener run
                    continue
                timeout = self.poll_interval if delay is None else min(delay, self.poll_interval)
                with suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await wake.wait()
        finally:
            # Work that keeps tasks of its own (webhook sends) stops them before its pool goes.
            close = getattr(work, "aclose", None)
            if close is not None:
                await close()
            if pool is not None:
                # Work cut short rolls back in PostgreSQL; its rows are due again once their
                # lease ends.
                pool.terminate()
