"""The webhook runner, a DueWork of the worker (worker/queue.py): it fans committed events out
to deliveries, claims due deliveries with a lease, sends them outside any transaction, and
records each attempt guarded by its lease.

- At least once: a delivery is due until an attempt's success is recorded; a runner that dies
  mid-attempt leaves it due again when the lease ends (one repeat at most).
- Never two attempts of one delivery at once: the lease outlasts the attempt's 10 s limit, and
  nothing else moves a leased delivery's due time.
- Sends run as tasks, so run_due returns at once; each destination host has its own cap, and
  hosts at their cap are left out of claims: one hanging receiver delays no other.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx

from callingbox_server.core.metrics import Metrics
from callingbox_server.domains.events.types import CHANNEL as EVENTS_CHANNEL
from callingbox_server.domains.webhooks import deliveries
from callingbox_server.domains.webhooks.deliveries import Claimed
from callingbox_server.domains.webhooks.repository import CHANNEL as WEBHOOKS_CHANNEL
from callingbox_server.domains.webhooks.schedule import MAX_ATTEMPTS, next_delay
from callingbox_server.domains.webhooks.sender import TIMEOUT_SECONDS, Outcome, create_client, send
from callingbox_server.domains.webhooks.signing import signature

logger = logging.getLogger("callingbox_server.webhooks")

# Longer than an attempt may take, with room to record it.
LEASE_SECONDS = TIMEOUT_SECONDS + 5.0
FAN_OUT_BATCH = 500
CLAIM_BATCH = 200
MAX_IN_FLIGHT = 1000
MAX_PER_HOST = 16
DISABLE_AFTER_EXHAUSTED = 10
PENDING_GAUGE_SECONDS = 5.0

# The call's webhook_status after its inline delivery ends ("delivered" or "failed", with the
# error): calls.steps.record_inline_webhook, wired in worker/runner.py (domains do not import
# each other).
InlineOutcome = Callable[[deliveries.Connection, uuid.UUID, str, str | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Recorded:
    status: str
    next_in: float | None
    automatic_failures: int
    next_trigger: str


def decide(claimed: Claimed, outcome: Outcome, state: asyncpg.Record, *, scale: float) -> Recorded:
    """The delivery after this attempt, from its state as locked now."""
    automatic = claimed.trigger == "automatic"
    failures = state["automatic_failures"]
    if outcome.ok:
        return Recorded("delivered", None, failures, "automatic")
    if automatic:
        failures += 1
    if state["endpoint_deleted"] or state["status"] == "exhausted":  # deleted meanwhile
        return Recorded("exhausted", None, failures, "automatic")
    # A redeliver asked for while this automatic attempt ran: the manual one comes next, now.
    if automatic and state["next_trigger"] == "manual":
        return Recorded("pending", 0.0, failures, "manual")
    delay = next_delay(max(failures, 1), scale=scale, retry_after=outcome.retry_after)
    if failures >= MAX_ATTEMPTS or delay is None:
        return Recorded("exhausted", None, failures, "automatic")
    paused = state["endpoint_status"] == "disabled"
    return Recorded("pending", None if paused else delay, failures, "automatic")


def _text(body: str | None) -> str | None:
    """A response body as PostgreSQL text can hold it (no NUL)."""
    return None if body is None else body.replace("\x00", "")


class WebhookWork:
    """The DueWork "webhooks": woken by committed events and by the API (redeliver, enable)."""

    name = "webhooks"
    channels: Sequence[str] = (EVENTS_CHANNEL, WEBHOOKS_CHANNEL)

    def __init__(
        self,
        *,
        retry_scale: float,
        allow_private: bool,
        metrics: Metrics | None = None,
        on_inline_outcome: InlineOutcome | None = None,
        max_per_host: int = MAX_PER_HOST,
    ) -> None:
        self.retry_scale = retry_scale
        self.allow_private = allow_private
        self.metrics = metrics
        self.on_inline_outcome = on_inline_outcome
        self.max_per_host = max_per_host
        self._client: httpx.AsyncClient | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._per_host: Counter[str] = Counter()
        self._db: asyncpg.Pool | None = None
        self._left_waiting = False
        self._pending_at = 0.0

    def _busy_hosts(self) -> list[str]:
        return [host for host, n in self._per_host.items() if n >= self.max_per_host]

    async def run_due(self, db: asyncpg.Pool) -> float | None:
        self._db = db
        events, _ = await deliveries.fan_out(db, FAN_OUT_BATCH)
        room = MAX_IN_FLIGHT - len(self._sending)
        busy = self._busy_hosts()
        claimed = (
            await deliveries.claim(
                db,
                limit=min(CLAIM_BATCH, room),
                busy_hosts=busy,
                lease_seconds=LEASE_SECONDS,
                max_per_host=self.max_per_host,
                in_flight=self._per_host,
            )
            if room > 0
            else []
        )
        # The claim took no more of a host than its room (this loop alone starts attempts).
        for item in claimed:
            self._start(item)
        # The in-flight bound stopped the claim short of what may be due: the next completion
        # wakes a runner (a host's cap does too, from that host's own completions).
        self._left_waiting = room <= len(claimed)
        await self._observe_pending(db)
        if events == FAN_OUT_BATCH or (claimed and len(claimed) == min(CLAIM_BATCH, room)):
            return 0.0
        return await deliveries.next_due(db, self._busy_hosts())

    def _start(self, claimed: Claimed) -> None:
        if self._client is None:  # made on first use: a process with nothing to send pays nothing
            self._client = create_client(allow_private=self.allow_private)
        self._per_host[claimed.host] += 1
        task = asyncio.create_task(self._attempt(claimed))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _observe_pending(self, db: asyncpg.Pool) -> None:
        if self.metrics is None or time.monotonic() - self._pending_at < PENDING_GAUGE_SECONDS:
            return
        self._pending_at = time.monotonic()
        self.metrics.webhook_pending.set(await deliveries.pending_count(db))

    async def _attempt(self, claimed: Claimed) -> None:
        assert self._client is not None
        assert self._db is not None
        body = claimed.envelope()
        if claimed.attempt_number == 1 and self.metrics is not None:
            lag = (datetime.now(UTC) - claimed.event_created_at).total_seconds()
            self.metrics.webhook_lag.observe(max(0.0, lag))
        headers = {
            "Content-Type": "application/json",
            "CallingBox-Signature": signature(claimed.secret, int(time.time()), body),
            "CallingBox-Event-Id": str(claimed.id),
            "CallingBox-Event-Type": claimed.event_type,
            "X-CallingBox-Event": claimed.event_type,
        }
        if claimed.call_id is not None:
            headers["X-CallingBox-Call-Id"] = str(claimed.call_id)
        try:
            outcome = await send(self._client, claimed.url, body, headers)
            recorded = await self._record(self._db, claimed, outcome)
            self._log(claimed, outcome, recorded)
        except Exception:  # a database outage: the lease runs out and the attempt is repeated
            logger.exception("webhook delivery %s: the attempt could not be recorded", claimed.id)
        finally:
            # A host at its cap may have deliveries due that no claim took: this one's end is
            # room for one. Others' ends need no look: new events wake the runners themselves.
            freed_capped_host = self._per_host[claimed.host] >= self.max_per_host
            self._per_host[claimed.host] -= 1
            if not self._per_host[claimed.host]:
                del self._per_host[claimed.host]
            if self._left_waiting or freed_capped_host:
                # Work may be waiting for want of room: wake a runner (this one too) to claim it.
                self._left_waiting = False
                await self._wake()

    async def _wake(self) -> None:
        assert self._db is not None
        try:
            await self._db.execute(deliveries.WAKE)
        except Exception as exc:  # the polling fallback picks it up
            logger.warning("webhooks: could not wake the runners: %r", exc)

    async def _record(
        self, db: asyncpg.Pool, claimed: Claimed, outcome: Outcome
    ) -> Recorded | None:
        if outcome.ok and claimed.endpoint_id is not None:
            row = await db.fetchrow(
                deliveries.RECORD_SUCCESS,
                claimed.id,
                claimed.token,
                claimed.trigger,
                claimed.attempt_number,
                outcome.status,
                outcome.started_at,
                outcome.duration_ms,
                _text(outcome.body),
            )
            if row is None:
                return None
            if row["status"] == "pending":
                await db.execute(deliveries.WAKE)
            return Recorded(row["status"], None, row["automatic_failures"], row["next_trigger"])
        async with db.acquire() as connection, connection.transaction():
            state = await deliveries.lock_held(connection, claimed)
            if state is None:
                return None  # the lease ran out and another runner took the delivery over
            recorded = decide(claimed, outcome, state, scale=self.retry_scale)
            await connection.execute(
                deliveries.UPDATE_DELIVERY,
                claimed.id,
                recorded.status,
                claimed.attempt_number,
                recorded.automatic_failures,
                recorded.next_trigger,
                recorded.next_in,
                outcome.summary,
                outcome.status,
            )
            await connection.execute(
                deliveries.INSERT_ATTEMPT,
                claimed.org_id,
                claimed.id,
                claimed.attempt_number,
                claimed.trigger,
                outcome.started_at,
                outcome.duration_ms,
                outcome.status,
                _text(outcome.body),
                outcome.error,
            )
            if recorded.next_in is not None:
                # The loop planned its next look before this retry's due time was known.
                await connection.execute(deliveries.WAKE)
            await self._record_endpoint(connection, claimed, recorded, state)
            if claimed.endpoint_id is None and claimed.call_id is not None:
                await self._record_inline(connection, claimed, recorded, outcome)
        return recorded

    async def _record_endpoint(
        self,
        connection: deliveries.Connection,
        claimed: Claimed,
        recorded: Recorded,
        state: asyncpg.Record,
    ) -> None:
        if claimed.endpoint_id is None:
            return
        if recorded.status == "delivered":
            await connection.execute(deliveries.ENDPOINT_SUCCEEDED, claimed.endpoint_id)
        elif (
            recorded.status == "exhausted"
            and claimed.trigger == "automatic"
            and not state["endpoint_deleted"]
        ):
            status = await connection.fetchval(
                deliveries.ENDPOINT_EXHAUSTED, claimed.endpoint_id, DISABLE_AFTER_EXHAUSTED
            )
            if status == "disabled":
                await connection.execute(deliveries.PAUSE_ENDPOINT, claimed.endpoint_id)

    async def _record_inline(
        self,
        connection: deliveries.Connection,
        claimed: Claimed,
        recorded: Recorded,
        outcome: Outcome,
    ) -> None:
        if self.on_inline_outcome is None or recorded.status == "pending":
            return
        assert claimed.call_id is not None
        if recorded.status == "delivered":
            await self.on_inline_outcome(connection, claimed.call_id, "delivered", None)
        else:
            await self.on_inline_outcome(connection, claimed.call_id, "failed", outcome.summary)

    def _log(self, claimed: Claimed, outcome: Outcome, recorded: Recorded | None) -> None:
        result = "dropped" if recorded is None else recorded.status
        kind = "succeeded" if outcome.ok else "failed"
        if self.metrics is not None:
            self.metrics.webhook_attempts.labels(kind).inc()
        # Never the secret, the body or the response: ids, status and timing only.
        logger.info(
            "webhook attempt %s delivery=%s attempt=%d status=%s duration_ms=%d -> %s%s",
            kind,
            claimed.id,
            claimed.attempt_number,
            outcome.status if outcome.status is not None else "-",
            outcome.duration_ms,
            result,
            f" error={outcome.error!r}" if outcome.error else "",
        )

    async def aclose(self) -> None:
        """Stop: attempts in flight are cancelled (their leases run out, so they are repeated)."""
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
