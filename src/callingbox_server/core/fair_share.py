"""Fair sharing between organizations, in one server process: a request rate and a number of
requests at once per org, so that one org's burst cannot take every database connection.

An org's requests beyond its share of concurrent requests wait in that org's own queue (not
the pool's, where they would crowd out every other org) and are refused with ``429`` when no
slot comes free in time; requests beyond its rate are refused at once. The limits are per
process: with ``serve --workers N`` each worker applies them to the requests it serves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from callingbox_server.core.db import outages
from callingbox_server.core.errors import RateLimited, ServiceUnavailable

RATE_WINDOW_SECONDS = 1
# Idle orgs are forgotten once this many are tracked (a rate window lasts a second anyway).
_MAX_TRACKED_ORGS = 10_000


@dataclass(slots=True)
class _OrgState:
    active: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    window: int = 0  # the rate window (whole seconds of the monotonic clock) being counted
    count: int = 0


class FairShare:
    def __init__(self, concurrency: int, rate: int, queue_timeout: float) -> None:
        self.concurrency = concurrency
        self.rate = rate  # requests per second; 0: no rate limit
        self.queue_timeout = queue_timeout
        self.orgs: dict[uuid.UUID, _OrgState] = {}
        policies = [f'"concurrency";q={concurrency};qu="concurrent-requests"']
        if rate:
            policies.insert(0, f'"requests";q={rate};w={RATE_WINDOW_SECONDS}')
        # draft-ietf-httpapi-ratelimit-headers: the policies, then which one ran out and when.
        self.policy_header = ", ".join(policies)

    def _state(self, org_id: uuid.UUID) -> _OrgState:
        state = self.orgs.get(org_id)
        if state is None:
            if len(self.orgs) >= _MAX_TRACKED_ORGS:
                self.orgs = {k: v for k, v in self.orgs.items() if v.active or v.waiters}
            state = self.orgs[org_id] = _OrgState()
        return state

    async def acquire(
        self, org_id: uuid.UUID, before_waiting: Callable[[], Awaitable[None]]
    ) -> None:
        """Take one of the org's slots, or raise ``RateLimited``; ``before_waiting`` runs
        before the request queues (to give back the database connection it holds)."""
        state = self._state(org_id)
        if self.rate:
            now = time.monotonic()
            window = int(now)
            if state.window != window:
                state.window, state.count = window, 0
            state.count += 1
            if state.count > self.rate:
                raise self._refused(
                    f"too many requests for this organization: at most {self.rate} a second",
                    f'"requests";r=0;t={RATE_WINDOW_SECONDS}',
                )
        if state.active < self.concurrency and not state.waiters:
            state.active += 1
            return
        await before_waiting()
        waiting_since = time.monotonic()
        waiter = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self._unless_outage(org_id, waiting_since)  # handed a slot at the end
                return
            state.waiters.remove(waiter)
            raise self._refused(
                f"too many concurrent requests for this organization: at most"
                f" {self.concurrency} at once, and none finished within {self.queue_timeout:g} s",
                '"concurrency";r=0',
            ) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(org_id)  # handed a slot, but the request is gone
            elif waiter in state.waiters:
                state.waiters.remove(waiter)
            raise
        self._unless_outage(org_id, waiting_since)

    def _unless_outage(self, org_id: uuid.UUID, waiting_since: float) -> None:
        # The requests ahead timed out on a database that stopped answering meanwhile: this one
        # would only wait as long again. Answer it now, and let the next one find out the same.
        # A connection that merely ended (a terminated backend) is not that: the next request
        # opens a new one, and a refused connect answers at once anyway.
        if outages.last_stall() >= waiting_since:
            self.release(org_id)
            raise ServiceUnavailable(
                "the database is unavailable, retry",
                headers={"Retry-After": str(RATE_WINDOW_SECONDS)},
            )

    def release(self, org_id: uuid.UUID) -> None:
        """Give the slot to the org's next waiting request, or back."""
        state = self.orgs[org_id]
        while state.waiters:
            waiter = state.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        state.active -= 1

    def _refused(self, message: str, remaining: str) -> RateLimited:
        return RateLimited(
            f"{message}; retry after {RATE_WINDOW_SECONDS} second",
            headers={
                "Retry-After": str(RATE_WINDOW_SECONDS),
                "RateLimit-Policy": self.policy_header,
                "RateLimit": remaining,
            },
        )
