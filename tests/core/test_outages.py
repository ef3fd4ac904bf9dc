"""The outages module: which errors count as the database being unavailable, and what the pool
does with a connection that failed under a statement (no server process: an engine, directly)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy.exc
from sqlalchemy import text

from callingbox_server.api.middleware import is_database_unavailable
from callingbox_server.core.config import Settings
from callingbox_server.core.db import outages
from callingbox_server.core.db.engine import create_engine
from callingbox_server.core.db.outages import DatabaseUnreachable
from tests.fixtures.database import asyncpg_dsn

# The pool after a connection failed under a statement


class TestPool:
    async def test_a_backend_terminated_under_a_statement_is_not_reused(
        self, database_url: str
    ) -> None:
        engine = create_engine(database_url, Settings(key_hash_secret="x"))
        admin = await asyncpg.connect(asyncpg_dsn(database_url))

        async def terminate(pid: int) -> None:
            await asyncio.sleep(0.3)
            await admin.execute("SELECT pg_terminate_backend($1)", pid)

        try:
            async with engine.connect() as connection:
                pid = await connection.scalar(text("SELECT pg_backend_pid()"))
                with pytest.raises(sqlalchemy.exc.DBAPIError) as raised:
                    await asyncio.gather(
                        connection.execute(text("SELECT pg_sleep(5)")), terminate(pid)
                    )
                assert connection.invalidated
            assert raised.value.connection_invalidated
            assert is_database_unavailable(raised.value)
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
        finally:
            await admin.close()
            await engine.dispose()

    async def test_a_statement_past_the_command_timeout_is_unavailable_and_not_reused(
        self, database_url: str
    ) -> None:
        engine = create_engine(database_url, Settings(key_hash_secret="x", db_command_timeout=0.3))
        try:
            async with engine.connect() as connection:
                pid = await connection.scalar(text("SELECT pg_backend_pid()"))
                started = time.monotonic()
                with pytest.raises(TimeoutError) as raised:
                    await connection.execute(text("SELECT pg_sleep(5)"))
                assert time.monotonic() - started < 1.0
                assert connection.invalidated  # asyncpg cancelled it; nobody may reuse it
            assert is_database_unavailable(raised.value)
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT pg_backend_pid()")) != pid
        finally:
            await engine.dispose()


# What counts as an outage


class TestIsDatabaseUnavailable:
    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(111, "Connection refused"),
            ConnectionResetError(104, "Connection reset by peer"),
            TimeoutError(),
            DatabaseUnreachable("cannot connect to PostgreSQL: [Errno 2] No such file"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            asyncpg.exceptions.TooManyConnectionsError("too many clients already"),
            asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
            asyncpg.exceptions.InternalClientError("cannot switch to state 12"),
        ],
        ids=lambda error: type(error).__name__,
    )
    def test_connection_level_failures_are(self, error: Exception) -> None:
        assert is_database_unavailable(error)
        wrapped = sqlalchemy.exc.DBAPIError("SELECT 1", None, error, connection_invalidated=False)
        assert is_database_unavailable(wrapped)

    @pytest.mark.parametrize(
        "error",
        [
            FileNotFoundError(2, "No such file or directory"),
            PermissionError(13, "Permission denied"),
            OSError("some other OS error"),
            asyncpg.exceptions.UniqueViolationError("duplicate key"),
            asyncpg.exceptions.QueryCanceledError("canceling statement due to user request"),
            asyncpg.exceptions.InterfaceError("cannot perform operation: another operation"),
            RuntimeError("a bug"),
        ],
        ids=lambda error: type(error).__name__,
    )
    def test_other_errors_are_not(self, error: Exception) -> None:
        assert not is_database_unavailable(error)

    def test_no_pool_slot_in_time_just_after_a_connection_failed_is(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(outages, "_last_failure", time.monotonic() - 1)
        error = sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 5 reached")
        assert is_database_unavailable(error)
        assert outages.outage_of(error) == "unavailable"

    def test_no_pool_slot_in_time_while_the_database_answers_is_overloaded(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stale = time.monotonic() - outages.OUTAGE_MEMORY_SECONDS - 1
        monkeypatch.setattr(outages, "_last_failure", stale)
        # Connections kept coming back while the checkout waited.
        error = outages.PoolWaitTimedOut("QueuePool limit of size 10 overflow 5 reached", 50)
        assert not is_database_unavailable(error)
        assert outages.outage_of(error) == "overloaded"

    def test_no_pool_slot_while_no_connection_came_back_is_unavailable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Every statement hangs (a frozen server) before any of them has failed.
        stale = time.monotonic() - outages.OUTAGE_MEMORY_SECONDS - 1
        monkeypatch.setattr(outages, "_last_failure", stale)
        error = outages.PoolWaitTimedOut("QueuePool limit of size 10 overflow 5 reached", 1)
        assert outages.outage_of(error) == "unavailable"

    def test_no_pool_slot_while_the_process_ran_behind_is_overloaded(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Nothing came back, but the loop was late for most of the wait: the connection's holder
        # may have had its answer and not been run yet, so the database is not known stalled.
        stale = time.monotonic() - outages.OUTAGE_MEMORY_SECONDS - 1
        monkeypatch.setattr(outages, "_last_failure", stale)
        error = outages.PoolWaitTimedOut(
            "QueuePool limit of size 1 overflow 0 reached", 0, 0.6, 0.3
        )
        assert outages.outage_of(error) == "overloaded"
        on_time = outages.PoolWaitTimedOut(
            "QueuePool limit of size 1 overflow 0 reached", 0, 0.6, 0.01
        )
        assert outages.outage_of(on_time) == "unavailable"

    def test_an_invalidated_connection_is(self) -> None:
        error = sqlalchemy.exc.DBAPIError(
            "SELECT 1", None, Exception("x"), connection_invalidated=True
        )
        assert is_database_unavailable(error)


async def test_a_missing_unix_socket_is_unavailable_not_a_bug(tmp_path: Path) -> None:
    """The embedded server down: its socket file is gone, which asyncpg reports as ENOENT."""
    engine = create_engine(
        f"postgresql+asyncpg://postgres@/postgres?host={tmp_path}", Settings(key_hash_secret="x")
    )
    try:
        with pytest.raises(DatabaseUnreachable) as raised:
            async with engine.connect():
                pass
    finally:
        await engine.dispose()
    error = raised.value
    assert isinstance(error.__cause__, FileNotFoundError)
    assert is_database_unavailable(error)


async def test_the_loop_watch_counts_how_long_the_loop_was_blocked() -> None:
    watch = asyncio.create_task(outages.watch_event_loop())
    try:
        await asyncio.sleep(0.05)
        before = outages.lateness()
        time.sleep(0.3)  # noqa: ASYNC251  # blocks the loop on purpose: the tick runs 0.3 s late
        assert outages.lateness() - before >= 0.25  # counted while still overdue, too
        await asyncio.sleep(0.05)
        assert outages.lateness() - before >= 0.25
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
