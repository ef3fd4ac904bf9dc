"""The due-work loop on a real PostgreSQL: woken by NOTIFY, by the due time it was told, by the
poll interval, and again after a failure or a lost LISTEN connection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress

import asyncpg

from callingbox_server.worker.queue import WORKER_APPLICATION_NAME, QueueRunner
from tests.fixtures.database import asyncpg_dsn

WAIT = 10.0  # seconds any expected wake-up may take at most (it normally takes milliseconds)
NEVER = 60.0  # a poll interval no test waits for


class Recorder:
    """A DueWork that counts its rounds and answers each with the next of ``delays``."""

    def __init__(self, delays: Sequence[float | None] = (None,), fail_first: int = 0) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}"
        self.channels = (self.name,)
        self.delays = list(delays)
        self.fail_first = fail_first
        self.rounds = 0
        self.round_done = asyncio.Condition()
        self.application_names: set[str] = set()

    async def run_due(self, db: asyncpg.Pool) -> float | None:
        self.application_names.add(await db.fetchval("SELECT current_setting('application_name')"))
        self.rounds += 1
        async with self.round_done:
            self.round_done.notify_all()
        if self.rounds <= self.fail_first:
            raise ConnectionError("the database went away")
        return self.delays[min(self.rounds, len(self.delays)) - 1]

    async def wait_rounds(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            async with self.round_done:
                await self.round_done.wait_for(lambda: self.rounds >= count)


@asynccontextmanager
async def running(dsn: str, work: Recorder, poll_interval: float = NEVER) -> AsyncIterator[None]:
    runner = QueueRunner(dsn, [work], pool_size=2, poll_interval=poll_interval, connect_timeout=5)
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def notify(dsn: str, channel: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_notify($1, 'x')", channel)
    finally:
        await connection.close()


# The listener's session shows its last statement, LISTEN "<channel>"; the channel names are unique
# per test, so no other test's worker (on a shared server) ever matches.
LISTENER = (
    "FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"
    " AND query = 'LISTEN \"' || $2 || '\"'"
)


async def listening(dsn: str, channel: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        found: int = await connection.fetchval(
            f"SELECT count(*) {LISTENER}", WORKER_APPLICATION_NAME, channel
        )
    finally:
        await connection.close()
    return found > 0


async def until(condition_holds: Callable[[], Awaitable[bool]], seconds: float = WAIT) -> None:
    async with asyncio.timeout(seconds):
        while not await condition_holds():  # noqa: ASYNC110 (a state in PostgreSQL, not an event)
            await asyncio.sleep(0.02)


async def settled(dsn: str, work: Recorder) -> int:
    """The rounds once the first look and the one the listener asks for (when it starts
    listening: a NOTIFY may have been missed before) are over."""
    await work.wait_rounds(1)
    await until(lambda: listening(dsn, work.name))
    await asyncio.sleep(0.2)
    return work.rounds


class TestWakeUps:
    async def test_a_notify_wakes_the_work_at_once(self, database_url: str) -> None:
        dsn = asyncpg_dsn(database_url)
        work = Recorder()
        async with running(dsn, work):
            await work.wait_rounds(1)  # the first look, at start
            await until(lambda: listening(dsn, work.name))
            await asyncio.sleep(0.2)  # and the look the listener asks for once it listens
            rounds = work.rounds
            await notify(dsn, work.name)
            await work.wait_rounds(rounds + 1)
            await notify(dsn, "some-other-channel")
            await asyncio.sleep(0.2)
            assert work.rounds == rounds + 1

    async def test_without_a_notify_the_poll_looks_again(self, database_url: str) -> None:
        work = Recorder()
        async with running(asyncpg_dsn(database_url), work, poll_interval=0.05):
            await work.wait_rounds(3)

    async def test_a_reported_due_time_wakes_it(self, database_url: str) -> None:
        dsn = asyncpg_dsn(database_url)
        work = Recorder()
        async with running(dsn, work):
            rounds = await settled(dsn, work)
            work.delays = [None] * rounds + [0.05, None]
            await notify(dsn, work.name)
            await work.wait_rounds(rounds + 2)
            await asyncio.sleep(0.2)
            assert work.rounds == rounds + 2  # None: nothing more is known to be due

    async def test_zero_means_more_is_due_now(self, database_url: str) -> None:
        dsn = asyncpg_dsn(database_url)
        work = Recorder()
        async with running(dsn, work):
            rounds = await settled(dsn, work)
            work.delays = [None] * rounds + [0, 0, 0, None]
            await notify(dsn, work.name)
            await work.wait_rounds(rounds + 4)
            await asyncio.sleep(0.2)
            assert work.rounds == rounds + 4


class TestFailures:
    async def test_a_failed_round_is_retried(self, database_url: str) -> None:
        work = Recorder(fail_first=2)
        async with running(asyncpg_dsn(database_url), work):
            await work.wait_rounds(3)

    async def test_a_lost_listen_connection_is_replaced_and_looks_again(
        self, database_url: str
    ) -> None:
        dsn = asyncpg_dsn(database_url)
        work = Recorder()
        async with running(dsn, work):
            await work.wait_rounds(1)
            await until(lambda: listening(dsn, work.name))
            admin = await asyncpg.connect(dsn)
            try:
                killed = await admin.fetchval(
                    f"SELECT count(pg_terminate_backend(pid)) {LISTENER}",
                    WORKER_APPLICATION_NAME,
                    work.name,
                )
            finally:
                await admin.close()
            assert killed >= 1
            # Reconnected, it looks at once (a NOTIFY may have been missed), then listens again.
            await work.wait_rounds(2)
            await until(lambda: listening(dsn, work.name))
            rounds = work.rounds
            await notify(dsn, work.name)
            await work.wait_rounds(rounds + 1)


class TestConnections:
    async def test_the_work_has_connections_of_its_own(self, database_url: str) -> None:
        work = Recorder()
        async with running(asyncpg_dsn(database_url), work):
            await work.wait_rounds(1)
        assert work.application_names == {WORKER_APPLICATION_NAME}
