"""The runner's SQL, on raw asyncpg: fan events out to deliveries, claim due deliveries with a
lease, and record attempts guarded by it. Set-based where it can be: one statement per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from callingbox_server.domains.webhooks.repository import CHANNEL

# Every event not yet fanned out, oldest first, is locked (SKIP LOCKED: runners split the
# backlog), gets one delivery per matching destination and is marked, in one transaction:
# exactly once, whatever runs at the same time. "*" matches call events only; configuration
# events go only to endpoints that name them. The unique indexes make a repeat a no-op.
_HOST = r"lower(substring({url} from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^/?#]+)'))"
FAN_OUT = f"""
WITH batch AS (
    SELECT id, org_id, type, call_id, data
    FROM events
    WHERE webhooks_fanned_out_at IS NULL
    ORDER BY created_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE events SET webhooks_fanned_out_at = statement_timestamp()
    FROM batch WHERE events.id = batch.id
), destinations AS (
    SELECT batch.id AS event_id, batch.org_id, batch.type, batch.call_id, w.id AS endpoint_id,
           w.url
    FROM batch
    JOIN webhook_endpoints w
      ON w.org_id = batch.org_id AND w.status = 'enabled' AND w.deleted_at IS NULL
     AND (batch.type = ANY(w.enabled_events)
          OR (batch.type LIKE 'call.%' AND '*' = ANY(w.enabled_events)))
    UNION ALL
    SELECT id, org_id, type, call_id, NULL, data -> 'call' ->> 'webhook_url'
    FROM batch
    WHERE type LIKE 'call.%' AND data -> 'call' ->> 'webhook_url' IS NOT NULL
), secrets AS (
    INSERT INTO org_signing_secrets (org_id)
    SELECT DISTINCT org_id FROM destinations WHERE endpoint_id IS NULL
    ON CONFLICT DO NOTHING
), inserted AS (
    INSERT INTO webhook_deliveries
        (id, org_id, event_id, endpoint_id, call_id, event_type, url, host, next_attempt_at)
    SELECT gen_random_uuid(), org_id, event_id, endpoint_id, call_id, type, url,
           {_HOST.format(url="url")}, statement_timestamp()
    FROM destinations
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM batch) AS events, (SELECT count(*) FROM inserted) AS deliveries
"""  # noqa: S608 (built from constant fragments, never from input)

# Only deliveries whose endpoint may receive them. The lease is the due time moved to when it
# ends.
_SENDABLE = """
    d.status = 'pending'
    AND (d.endpoint_id IS NULL OR EXISTS (
        SELECT 1 FROM webhook_endpoints w
        WHERE w.id = d.endpoint_id AND w.status = 'enabled' AND w.deleted_at IS NULL))
"""
# Each host with a pending delivery, once: a skip scan of ix_webhook_deliveries_host_due, one
# index probe per host, however long any host's backlog. A host at its cap in this runner ($1)
# is left out, so a hanging receiver's backlog costs the others' claims nothing.
_HOSTS = """
WITH RECURSIVE hosts AS (
    (SELECT d.host FROM webhook_deliveries d WHERE d.status = 'pending' ORDER BY d.host LIMIT 1)
    UNION ALL
    SELECT (SELECT d.host FROM webhook_deliveries d
            WHERE d.status = 'pending' AND d.host > hosts.host ORDER BY d.host LIMIT 1)
    FROM hosts WHERE hosts.host IS NOT NULL
), open_hosts AS (
    SELECT host FROM hosts WHERE host IS NOT NULL AND host <> ALL($1::text[])
)"""
# Claimed only up to each host's room in this runner ($5 for a host it sends nothing to, else
# $7 for the host $6 at the same index), so none is claimed to be given back at once: each
# host's oldest due rows within its room are read (not locked), the oldest $2 of them all are
# locked, skipping any another runner holds; one claimed by another meanwhile fails the
# re-check of its due time.
CLAIM = f"""{_HOSTS}, ranked AS (
    SELECT d.id FROM open_hosts h
    CROSS JOIN LATERAL (
        SELECT coalesce(max(r.room), $5) AS room
        FROM unnest($6::text[], $7::int[]) AS r(host, room) WHERE r.host = h.host
    ) r
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
        WHERE d.host = h.host AND d.next_attempt_at <= statement_timestamp() AND {_SENDABLE}
        ORDER BY d.next_attempt_at
        LIMIT r.room
    ) d
    ORDER BY d.next_attempt_at
    LIMIT $2
), due AS (
    SELECT d.id FROM webhook_deliveries d JOIN ranked ON ranked.id = d.id
    WHERE d.next_attempt_at <= statement_timestamp() AND d.status = 'pending'
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d
    SET lease_token = $3, next_attempt_at = statement_timestamp() + make_interval(secs => $4)
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.org_id, d.event_id, d.endpoint_id, d.call_id, d.event_type, d.url,
              d.host, d.next_trigger, d.attempt_count
)
SELECT c.*, e.data::text AS data, e.created_at AS event_created_at,
       coalesce(w.secret, s.secret) AS secret
FROM claimed c
JOIN events e ON e.id = c.event_id
LEFT JOIN webhook_endpoints w ON w.id = c.endpoint_id
LEFT JOIN org_signing_secrets s ON s.org_id = c.org_id AND c.endpoint_id IS NULL
"""  # noqa: S608 (built from constant fragments, never from input)
NEXT_DUE = f"""{_HOSTS}
SELECT extract(epoch FROM min(d.next_attempt_at) - statement_timestamp())::float8 AS seconds
FROM open_hosts h
CROSS JOIN LATERAL (
    SELECT d.next_attempt_at FROM webhook_deliveries d
    WHERE d.host = h.host AND d.next_attempt_at IS NOT NULL AND {_SENDABLE}
    ORDER BY d.next_attempt_at
    LIMIT 1
) d
"""  # noqa: S608 (built from constant fragments, never from input)
PENDING = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"


Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this runner holds the lease of, with what its attempt needs."""

    id: uuid.UUID
    org_id: uuid.UUID
    endpoint_id: uuid.UUID | None
    call_id: uuid.UUID | None
    event_type: str
    url: str
    host: str
    trigger: str
    attempt_number: int
    data: str
    event_created_at: datetime
    secret: str
    token: uuid.UUID

    def envelope(self) -> bytes:
        """The body of every attempt: the same bytes each time (only the signature changes)."""
        created = int(self.event_created_at.timestamp())
        return b'{"id":"%s","type":"%s","created":%d,"api_version":"2026-04","data":%s}' % (
            str(self.id).encode(),
            self.event_type.encode(),
            created,
            self.data.encode(),
        )


async def fan_out(db: asyncpg.Pool, limit: int) -> tuple[int, int]:
    """Fan out up to ``limit`` events: how many events, and how many deliveries were made."""
    row = await db.fetchrow(FAN_OUT, limit)
    assert row is not None
    return int(row["events"]), int(row["deliveries"])


async def claim(
    db: asyncpg.Pool,
    *,
    limit: int,
    busy_hosts: Sequence[str],
    lease_seconds: float,
    max_per_host: int,
    in_flight: Mapping[str, int],
) -> list[Claimed]:
    """Up to ``limit`` due deliveries, none beyond ``max_per_host`` in flight for its host."""
    token = uuid.uuid4()
    hosts = list(in_flight)
    room = [max(0, max_per_host - in_flight[host]) for host in hosts]
    rows = await db.fetch(
        CLAIM, list(busy_hosts), limit, token, lease_seconds, max_per_host, hosts, room
    )
    return [
        Claimed(
            id=row["id"],
            org_id=row["org_id"],
            endpoint_id=row["endpoint_id"],
            call_id=row["call_id"],
            event_type=row["event_type"],
            url=row["url"],
            host=row["host"],
            trigger=row["next_trigger"],
            attempt_number=row["attempt_count"] + 1,
            data=row["data"],
            event_created_at=row["event_created_at"],
            secret=row["secret"],
            token=token,
        )
        for row in rows
    ]


async def next_due(db: asyncpg.Pool, busy_hosts: Sequence[str]) -> float | None:
    seconds = await db.fetchval(NEXT_DUE, list(busy_hosts))
    return None if seconds is None else max(0.0, float(seconds))


async def pending_count(db: asyncpg.Pool) -> int:
    return int(await db.fetchval(PENDING))


# Recording an attempt: the delivery is read under its row lock, and only while this runner
# still holds the lease; the outcome is worked out in Python (tasks.py) and written back.
LOCK_HELD = """
SELECT d.status, d.automatic_failures, d.next_trigger, d.endpoint_id, d.call_id,
       w.status AS endpoint_status, w.deleted_at IS NOT NULL AS endpoint_deleted,
       w.consecutive_failures
FROM webhook_deliveries d
LEFT JOIN webhook_endpoints w ON w.id = d.endpoint_id
WHERE d.id = $1 AND d.lease_token = $2
FOR UPDATE OF d
"""
UPDATE_DELIVERY = """
UPDATE webhook_deliveries
SET status = $2::text, attempt_count = $3, automatic_failures = $4, next_trigger = $5::text,
    next_attempt_at = CASE WHEN $6::float8 IS NULL THEN NULL
                           ELSE statement_timestamp() + make_interval(secs => $6) END,
    last_error = $7, last_response_status = $8,
    delivered_at = CASE WHEN $2::text = 'delivered' THEN statement_timestamp() END,
    lease_token = NULL, updated_at = statement_timestamp()
WHERE id = $1
"""
INSERT_ATTEMPT = """
INSERT INTO webhook_attempts (id, org_id, delivery_id, attempt_number, trigger, started_at,
                              duration_ms, response_status, response_body, error)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
ENDPOINT_SUCCEEDED = """
UPDATE webhook_endpoints SET consecutive_failures = 0, updated_at = statement_timestamp()
WHERE id = $1 AND consecutive_failures <> 0
"""
# Ten exhausted deliveries in a row disable the endpoint (and pause its other deliveries).
ENDPOINT_EXHAUSTED = """
UPDATE webhook_endpoints
SET consecutive_failures = consecutive_failures + 1,
    status = CASE WHEN consecutive_failures + 1 >= $2 THEN 'disabled' ELSE status END,
    disabled_reason = CASE WHEN consecutive_failures + 1 >= $2 AND status = 'enabled'
                           THEN 'too_many_failures' ELSE disabled_reason END,
    disabled_at = CASE WHEN consecutive_failures + 1 >= $2 AND status = 'enabled'
                       THEN statement_timestamp() ELSE disabled_at END,
    updated_at = statement_timestamp()
WHERE id = $1
RETURNING status
"""
PAUSE_ENDPOINT = """
UPDATE webhook_deliveries SET next_attempt_at = NULL, updated_at = statement_timestamp()
WHERE endpoint_id = $1 AND status = 'pending'
  AND (lease_token IS NULL OR next_attempt_at <= statement_timestamp())
"""
# The common case in one statement (one round trip, its own transaction): an endpoint's
# delivery succeeded. A redeliver asked for meanwhile leaves it pending, due now, manual.
RECORD_SUCCESS = """
WITH held AS (
    SELECT id, next_trigger = 'manual' AND $3::text = 'automatic' AS again
    FROM webhook_deliveries
    WHERE id = $1 AND lease_token = $2
    FOR UPDATE
), delivery AS (
    UPDATE webhook_deliveries d
    SET status = CASE WHEN held.again THEN 'pending' ELSE 'delivered' END,
        next_trigger = CASE WHEN held.again THEN 'manual' ELSE 'automatic' END,
        next_attempt_at = CASE WHEN held.again THEN statement_timestamp() END,
        delivered_at = statement_timestamp(), attempt_count = $4, last_error = NULL,
        last_response_status = $5, lease_token = NULL, updated_at = statement_timestamp()
    FROM held WHERE d.id = held.id
    RETURNING d.id, d.org_id, d.endpoint_id, d.status, d.automatic_failures, d.next_trigger
), attempt AS (
    INSERT INTO webhook_attempts (id, org_id, delivery_id, attempt_number, trigger, started_at,
                                  duration_ms, response_status, response_body, error)
    SELECT gen_random_uuid(), org_id, id, $4, $3::text, $6, $7, $5, $8, NULL FROM delivery
), endpoint AS (
    UPDATE webhook_endpoints w
    SET consecutive_failures = 0, updated_at = statement_timestamp()
    FROM delivery WHERE w.id = delivery.endpoint_id AND w.consecutive_failures <> 0
)
SELECT status, automatic_failures, next_trigger FROM delivery
"""
WAKE = f"SELECT pg_notify('{CHANNEL}', '')"


async def lock_held(connection: Connection, claimed: Claimed) -> asyncpg.Record | None:
    """The delivery's state, locked, if this runner still holds its lease; else None."""
    row: asyncpg.Record | None = await connection.fetchrow(LOCK_HELD, claimed.id, claimed.token)
    return row
