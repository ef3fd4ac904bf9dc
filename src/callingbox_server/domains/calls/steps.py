"""The SQL of the lifecycle: claiming due calls, and applying moves set-based.

A due call is claimed by pushing its ``due_at`` forward by a lease, in one statement that skips
rows another runner holds (``FOR UPDATE SKIP LOCKED``): a claim that dies with its process comes
due again when the lease ends, and two runners never claim one step. A move is applied only if
the call is still in the status the move starts from, so a repeated or beaten move is a no-op.
Applying a batch is one statement: status and timestamps, billing, transcript, the event (with
the call as of the move) and the next due time, committed together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from callingbox_server.core.db.driver import DriverStatement
from callingbox_server.domains.calls.lifecycle import TERMINAL, Move
from callingbox_server.domains.calls.repository import (
    STATE_COLUMNS,
    compiled,
    event_rows,
    json_text,
    wire_sql,
)

_TERMINAL = ", ".join(f"'{status}'" for status in TERMINAL)
_ENDS = f"s.to_status IN ({_TERMINAL})"
_WITH_EVENT = "rendered r JOIN step s ON s.id = r.id WHERE s.event_type IS NOT NULL"


def _seconds_since(column: str) -> str:
    return f"COALESCE(ceil(extract(epoch FROM statement_timestamp() - c.{column})), 0)::int"


APPLY = compiled(
    f"""
    WITH step AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:org_ids AS uuid[]), CAST(:from_statuses AS text[]),
            CAST(:to_statuses AS text[]), CAST(:answered_by AS text[]),
            CAST(:error_codes AS text[]), CAST(:error_messages AS text[]),
            CAST(:hangup_causes AS text[]), CAST(:results AS json[]),
            CAST(:result_statuses AS text[]), CAST(:result_errors AS text[]),
            CAST(:transcripts AS json[]), CAST(:next_in AS float8[]),
            CAST(:event_types AS text[])
        ) AS s(
            id, org_id, from_status, to_status, answered_by, error_code, error_message,
            hangup_cause, result, result_status, result_error, transcript, next_in, event_type
        )
    ),
    moved AS (
        UPDATE calls c SET
            status = s.to_status,
            updated_at = statement_timestamp(),
            answered_by = COALESCE(s.answered_by, c.answered_by),
            started_at = CASE WHEN s.to_status = 'ringing'
                THEN statement_timestamp() ELSE c.started_at END,
            answered_at = CASE WHEN s.to_status = 'in_progress'
                THEN statement_timestamp() ELSE c.answered_at END,
            ended_at = CASE WHEN {_ENDS} THEN statement_timestamp() END,
            duration_seconds = CASE WHEN {_ENDS} THEN {_seconds_since("started_at")} END,
            billed_duration_seconds = CASE WHEN {_ENDS} THEN {_seconds_since("answered_at")} END,
            billing_amount_milli_cents = CASE WHEN {_ENDS}
                THEN {_seconds_since("answered_at")} * CAST(:rate AS int) END,
            reservation_status = CASE
                WHEN NOT {_ENDS} THEN c.reservation_status
                WHEN c.answered_at IS NULL THEN 'released' ELSE 'settled' END,
            error_code = COALESCE(s.error_code, c.error_code),
            error_message = COALESCE(s.error_message, c.error_message),
            hangup_cause = COALESCE(s.hangup_cause, c.hangup_cause),
            result = COALESCE(s.result, c.result),
            result_status = COALESCE(s.result_status, c.result_status),
            result_error = COALESCE(s.result_error, c.result_error),
            due_at = statement_timestamp() + s.next_in * interval '1 second'
        FROM step s
        WHERE c.id = s.id AND c.org_id = s.org_id AND c.status = s.from_status
        RETURNING c.*
    ),
    rendered AS (
        SELECT m.id, m.org_id, m.status, m.answered_at, m.ended_at, {wire_sql("m")} AS body
        FROM moved m
    ),
    segments AS (
        INSERT INTO call_transcript_segments (
            call_id, sequence_no, role, text, started_at, ended_at, duration_ms, source
        )
        SELECT r.id, t.n, t.line->>'role', t.line->>'text', t.started_at, t.ended_at,
               round(extract(epoch FROM t.ended_at - t.started_at) * 1000)::int,
               CASE WHEN t.line->>'role' = 'agent' THEN 'tts' ELSE 'stt' END
        FROM rendered r
        JOIN step s ON s.id = r.id
        CROSS JOIN LATERAL (
            SELECT e.line, e.n,
                   COALESCE(r.answered_at, r.ended_at) + (r.ended_at - COALESCE(r.answered_at,
                       r.ended_at)) * ((e.n - 1) / json_array_length(s.transcript)::float8)
                       AS started_at,
                   COALESCE(r.answered_at, r.ended_at) + (r.ended_at - COALESCE(r.answered_at,
                       r.ended_at)) * (e.n / json_array_length(s.transcript)::float8)
                       AS ended_at
            FROM json_array_elements(s.transcript) WITH ORDINALITY AS e(line, n)
        ) t
        WHERE s.transcript IS NOT NULL
    ),
    event AS ({event_rows(_WITH_EVENT, "s.event_type")})
    SELECT r.id, r.org_id, r.status, convert_to(r.body, 'UTF8') AS body FROM rendered r
    """
)


def apply_params(moves: Sequence[Move], rate_milli_cents: int) -> dict[str, Any]:
    """The batch as one array per column (what ``APPLY`` unnests)."""
    events = [move.event for move in moves]
    return {
        "ids": [move.call_id for move in moves],
        "org_ids": [move.org_id for move in moves],
        "from_statuses": [move.from_status for move in moves],
        "to_statuses": [event.status for event in events],
        "answered_by": [event.answered_by for event in events],
        "error_codes": [event.error_code for event in events],
        "error_messages": [event.error_message for event in events],
        "hangup_causes": [event.hangup_cause for event in events],
        "results": [json_text(event.result) for event in events],
        "result_statuses": [event.result_status for event in events],
        "result_errors": [event.result_error for event in events],
        "transcripts": [
            None
            if event.transcript is None
            else json_text([{"role": role, "text": line} for role, line in event.transcript])
            for event in events
        ],
        "next_in": [event.next_in for event in events],
        "event_types": [move.event_type for move in moves],
        "rate": rate_milli_cents,
    }


CLAIM = compiled(
    f"""
    WITH due AS (
        SELECT id, due_at FROM calls
        WHERE due_at <= statement_timestamp()
        ORDER BY due_at
        LIMIT CAST(:limit AS int)
        FOR UPDATE SKIP LOCKED
    )
    UPDATE calls c
    SET due_at = statement_timestamp() + CAST(:lease AS float8) * interval '1 second'
    FROM due
    WHERE c.id = due.id
    RETURNING {STATE_COLUMNS},
              extract(epoch FROM statement_timestamp() - due.due_at)::float8 AS lag
    """
)

NEXT_DUE = compiled(
    """
    SELECT extract(epoch FROM min(due_at) - statement_timestamp())::float8 AS seconds
    FROM calls WHERE due_at IS NOT NULL
    """
)

# A claimed call the carrier had nothing for: no step of its own until someone moves it.
RELEASE = compiled(
    """
    UPDATE calls SET due_at = NULL
    WHERE id = ANY(CAST(:ids AS uuid[])) AND due_at > statement_timestamp()
    """
)

# The inline webhook's outcome (section 4: webhook_status is of the inline webhook only). One
# failure is enough and stays: a later event's delivery that succeeds does not hide it. Not a
# call transition, so updated_at stays as the lifecycle left it.
INLINE_WEBHOOK = compiled(
    """
    UPDATE calls SET webhook_status = :status, webhook_error = :error
    WHERE id = :id AND webhook_status <> 'failed'
    """
)


async def fetch(
    db: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
    statement: DriverStatement,
    params: Mapping[str, Any],
) -> Sequence[asyncpg.Record]:
    """``statement`` on a raw connection, its parameters by name."""
    return await db.fetch(statement.sql, *(params[name] for name in statement.names))


async def record_inline_webhook(
    db: asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any],
    call_id: uuid.UUID,
    status: str,
    error: str | None,
) -> None:
    """The webhooks runner's report on a delivery to a call's own ``webhook_url``: "delivered",
    or "failed" with the error once the delivery is exhausted."""
    await fetch(db, INLINE_WEBHOOK, {"id": call_id, "status": status, "error": error})
