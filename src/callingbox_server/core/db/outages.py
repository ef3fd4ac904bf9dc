"""Database outages: keep broken connections out of the pool, and tell an outage from a bug.

Without a pre-ping (a round trip per request), a pooled connection can be dead in two ways:
PostgreSQL closed it while it sat idle (a restart, ``pg_terminate_backend``), which asyncpg has
already noticed, or it breaks under a running statement. The first is dropped at checkout for
free; the second is invalidated by SQLAlchemy when it recognizes a disconnect, which its asyncpg
dialect does only when asyncpg has already marked the connection closed. A terminated backend can
also surface as ``AdminShutdownError`` before asyncpg sees the socket close, or as
``InternalClientError`` with the protocol left mid-operation, and such a connection would go back
into the pool (https://github.com/sqlalchemy/sqlalchemy/issues/13241,
https://github.com/MagicStack/asyncpg/issues/1069): ``handle_error`` marks those as disconnects,
and closes them at once.
"""

from __future__ import annotations

import asyncio
import errno
import time
from typing import Any, Literal

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

# PostgreSQL ends or refuses the session: class 08 (connection exception), 57P01-57P05 (admin
# shutdown, crash shutdown, cannot connect now, database dropped, idle session timeout), 53300.
_SESSION_ENDED = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.DatabaseDroppedError,
    asyncpg.exceptions.IdleSessionTimeoutError,
    asyncpg.exceptions.TooManyConnectionsError,
    # The client protocol is in a state it cannot leave: the connection is unusable.
    asyncpg.exceptions.InternalClientError,
)
_NETWORK_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.ETIMEDOUT}
)


# A pool that ran out of connections is waiting on an outage when a connection failed this
# recently, or when none came back during the wait (every statement hangs); it is only busy
# when connections keep coming back, just not fast enough.
OUTAGE_MEMORY_SECONDS = 5.0
_last_failure = -OUTAGE_MEMORY_SECONDS  # time.monotonic() of this process's last connection failure
_last_stall = -OUTAGE_MEMORY_SECONDS  # ... and of its last one that timed out (nothing answered)
_checkins = 0  # connections given back to a pool of this process, ever
# Connections given back while a checkout waited, below which the wait counts as stalled: a
# pool's worth (at least 2). Those in flight when every statement hung may still come back as
# the wait begins; a busy pool gives back far more in a pool timeout.
_stalled_below = 2


# A process too busy to run its own callbacks cannot tell a stalled database from its backlog:
# the connection it waits for may be held by a request that has its answer and has not been run
# yet. ``watch_event_loop`` ticks every _TICK_SECONDS and adds up how late the ticks ran; a wait
# the loop spent at least _BUSY_SHARE of behind is the process's own doing, so not "stalled".
_TICK_SECONDS = 0.02
_BUSY_SHARE = 0.25
_lateness = 0.0  # seconds the loop's ticks have run late, ever
_tick_due: float | None = None  # when the pending tick should run (None: no watch running)


async def watch_event_loop() -> None:
    """Measure the event loop's lateness until cancelled (run for a server's lifetime)."""
    global _lateness, _tick_due
    try:
        while True:
            _tick_due = time.monotonic() + _TICK_SECONDS
            await asyncio.sleep(_TICK_SECONDS)
            _lateness += max(0.0, time.monotonic() - _tick_due)
    finally:
        _tick_due = None


def lateness() -> float:
    """Seconds the event loop has been late, ever, counting the pending tick's delay so far."""
    overdue = 0.0 if _tick_due is None else max(0.0, time.monotonic() - _tick_due)
    return _lateness + overdue


class PoolWaitTimedOut(exc.TimeoutError):
    """No pool slot came free in time (raised by metrics.ObservedPool): how many connections were
    given back while this checkout waited, how long it waited, how late the loop ran meanwhile."""

    def __init__(
        self, message: str, returned_while_waiting: int, waited: float = 0.0, late: float = 0.0
    ) -> None:
        super().__init__(message)
        self.returned_while_waiting = returned_while_waiting
        self.waited = waited
        self.late = late

    @property
    def stalled(self) -> bool:
        """Nothing came back while the loop ran on time: every statement hangs."""
        behind = self.waited > 0 and self.late >= _BUSY_SHARE * self.waited
        return self.returned_while_waiting < _stalled_below and not behind


def note_failure(error: BaseException) -> None:
    """A connection failed (also called by driver reads, which bypass ``handle_error``); a
    timeout is also noted as a stall: PostgreSQL, or the network to it, stopped answering."""
    global _last_failure, _last_stall
    _last_failure = time.monotonic()
    if any(isinstance(cause, TimeoutError) for cause in _causes(error)):
        _last_stall = _last_failure


def checkins() -> int:
    """How many connections this process's pools have been given back, ever."""
    return _checkins


def last_failure() -> float:
    """When (``time.monotonic()``) a connection of this process last failed."""
    return _last_failure


def last_stall() -> float:
    """When (``time.monotonic()``) a connection of this process last timed out.

    Unlike a connection that ended (a terminated backend, a refused connect: the next attempt
    answers at once, and usually succeeds), a timeout says the next request would wait as long.
    """
    return _last_stall


class DatabaseUnreachable(Exception):
    """Opening a connection failed at the network level: refused, timed out, no route, no socket."""


def _causes(error: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped, and what caused it (asyncpg's own error, usually)."""
    chain: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending and len(chain) < 8:
        current = pending.pop()
        if current is None or current in chain:
            continue
        chain.append(current)
        orig = getattr(current, "orig", None)
        pending += [current.__cause__, orig if isinstance(orig, BaseException) else None]
    return chain


def is_connection_failure(error: BaseException) -> bool:
    """The session with PostgreSQL is gone or could not start; errors in our SQL are not."""
    for cause in _causes(error):
        if isinstance(cause, (DatabaseUnreachable, ConnectionError, TimeoutError, *_SESSION_ENDED)):
            return True
        if isinstance(cause, OSError) and cause.errno in _NETWORK_ERRNOS:
            return True
    return False


def discard_broken_connections(engine: AsyncEngine) -> None:
    global _stalled_below
    pool_size = getattr(engine.sync_engine.pool, "size", lambda: 1)()
    _stalled_below = max(2, pool_size)
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine.pool, "checkin")
    def note_progress(_dbapi_connection: Any, _record: Any) -> None:
        global _checkins
        _checkins += 1

    @event.listens_for(sync_engine, "do_connect")
    def connect(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as error:
            note_failure(error)
            # A timeout, a refusal, an unknown host, or a Unix socket file that is not there (the
            # embedded server is down): outside connecting, an OSError like the last may be a bug.
            raise DatabaseUnreachable(f"cannot connect to PostgreSQL: {error}") from error

    @event.listens_for(sync_engine, "checkout")
    def drop_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # asyncpg saw the server close it while it sat in the pool: no round trip needed to know.
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError("the pooled connection was closed by the server")

    @event.listens_for(sync_engine, "handle_error")
    def invalidate_on_connection_failure(context: ExceptionContext) -> None:
        if not is_connection_failure(context.original_exception):
            return
        note_failure(context.original_exception)
        context.is_disconnect = True
        connection = context.connection
        driver = None if connection is None or connection.invalidated else connection.connection
        if driver is not None and driver.driver_connection is not None:
            # Close the socket now. SQLAlchemy would say goodbye first (asyncpg close(), up to
            # 2 s), in the request, to a server that may not be answering at all.
            driver.driver_connection.terminate()


def outage_of(error: BaseException) -> Literal["unavailable", "overloaded"] | None:
    """``unavailable``: connection-level failures (refused, timed out, dropped), not errors in
    our own SQL. ``overloaded``: no pool slot came free in time while the database answers."""
    if isinstance(error, exc.TimeoutError):  # no pool slot came free in time
        now = time.monotonic()
        failed = now - _last_failure < OUTAGE_MEMORY_SECONDS
        # Counted by the pool for the wait that timed out, with the loop's own lateness, so a
        # process too busy to run its callbacks for a while is not taken for a stalled database.
        stalled = not isinstance(error, PoolWaitTimedOut) or error.stalled
        return "unavailable" if failed or stalled else "overloaded"
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return "unavailable"
    return "unavailable" if is_connection_failure(error) else None


def is_database_unavailable(error: BaseException) -> bool:
    return outage_of(error) == "unavailable"
