"""The runner's share of calls: every due step, claimed in batches and applied set-based.

One round is two statements on the runner's own connection, whatever the batch: the claim
(``steps.CLAIM``, which leases the due calls) and the moves the carrier reports for them
(``steps.APPLY``, each guarded by the status it starts from). With ring and talk times of 0 a
call's next step is due at once, so the loop goes straight on to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg
from prometheus_client import Counter, Histogram

from callingbox_server.core.metrics import Metrics
from callingbox_server.domains.calls import repository, steps
from callingbox_server.domains.calls.carriers.interface import Carrier
from callingbox_server.domains.calls.lifecycle import TERMINAL, Move

logger = logging.getLogger("callingbox_server.calls")

BATCH = 500
# A claimed step not applied within this long (its runner died) is due again.
LEASE_SECONDS = 10.0
LOCKED_RETRY_SECONDS = 0.05
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CallMetrics:
    def __init__(self, metrics: Metrics) -> None:
        target = metrics.target
        self.moves = Counter(
            "callingbox_call_status_changes",
            "Calls moved into each status by the runner.",
            ["status"],
            registry=target,
        )
        self.outcomes = Counter(
            "callingbox_calls_ended",
            "Calls that reached a terminal status in the runner, by outcome (the status, or "
            "failed:<error_code>).",
            ["outcome"],
            registry=target,
        )
        self.claimed = Counter(
            "callingbox_call_steps_claimed", "Call steps the runner claimed.", registry=target
        )
        self.lag = Histogram(
            "callingbox_call_step_lag_seconds",
            "From a call step's due time to the runner claiming it.",
            buckets=_LAG_BUCKETS,
            registry=target,
        )


class CallSteps:
    """The calls' ``DueWork`` (see worker.queue)."""

    name = "calls"
    channels: Sequence[str] = (repository.CHANNEL,)

    def __init__(self, carrier: Carrier, metrics: Metrics | None = None) -> None:
        self.carrier = carrier
        self.metrics = CallMetrics(metrics) if metrics is not None else None

    async def run_due(self, db: asyncpg.Pool) -> float | None:
        async with db.acquire() as connection:
            return await self.run_batch(connection)

    async def run_batch(
        self, connection: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, limit: int = BATCH
    ) -> float | None:
        """One round on ``connection``: 0 when it did work (more may be due), else the seconds
        until the next step is due (None: none is)."""
        claimed = await steps.fetch(
            connection, steps.CLAIM, {"limit": limit, "lease": LEASE_SECONDS}
        )
        if not claimed:
            (row,) = await steps.fetch(connection, steps.NEXT_DUE, {})
            seconds: float | None = row["seconds"]
            # Due but not claimable: another runner holds those calls; look again shortly
            # rather than spin.
            return None if seconds is None else max(seconds, LOCKED_RETRY_SECONDS)
        moves, idle = [], []
        for row in claimed:
            call = repository.state_of(row)
            event = await self.carrier.next_event(call)
            if event is None:
                idle.append(call.id)
            else:
                moves.append(Move(call.id, row["org_id"], call.status, event))
        if idle:
            await steps.fetch(connection, steps.RELEASE, {"ids": idle})
        moved: Sequence[asyncpg.Record] = []
        if moves:
            params = steps.apply_params(moves, self.carrier.rate_milli_cents)
            moved = await steps.fetch(connection, steps.APPLY, params)
        self._observe(claimed, moves, moved)
        return 0.0

    def _observe(
        self,
        claimed: Sequence[asyncpg.Record],
        moves: Sequence[Move],
        moved: Sequence[asyncpg.Record],
    ) -> None:
        by_id = {move.call_id: move for move in moves}
        for row in moved:
            move = by_id[row["id"]]
            logger.info(
                "call %s of org %s: %s -> %s",
                row["id"],
                row["org_id"],
                move.from_status,
                row["status"],
            )
        if self.metrics is None:
            return
        self.metrics.claimed.inc(len(claimed))
        for row in claimed:
            self.metrics.lag.observe(max(row["lag"], 0.0))
        for row in moved:
            status = row["status"]
            self.metrics.moves.labels(status).inc()
            if status in TERMINAL:
                error = by_id[row["id"]].event.error_code
                self.metrics.outcomes.labels(f"{status}:{error}" if error else status).inc()
