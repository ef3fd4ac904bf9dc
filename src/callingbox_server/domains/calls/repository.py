"""Every SQL statement about calls. Reads are scoped by org (core.db.scoping); the writes are
set-based statements that change a call, write its event and its next due time at once, so a
call and its events never disagree and a move costs one round trip however many calls it moves.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy import ColumnElement, Select, bindparam, func, literal_column, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.core import models
from callingbox_server.core.db.driver import DriverStatement, driver_fetch, for_driver
from callingbox_server.core.db.scoping import org_scoped
from callingbox_server.core.db.wire import EMPTY_ARRAY, as_bytes, json_of, wire_column
from callingbox_server.core.pagination import (
    Cursor,
    KeysetDirection,
    keyset,
    keyset_direction,
    keyset_params,
)
from callingbox_server.domains.calls.carriers.interface import CallState
from callingbox_server.domains.calls.schemas import Call, TranscriptSegment
from callingbox_server.domains.events.types import CHANNEL as EVENTS_CHANNEL

CALLS = models.Call.__table__
SEGMENTS = models.CallTranscriptSegment.__table__
# NOTIFY channel of the runner: a call with a step due now wakes it.
CHANNEL = "callingbox_calls"
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy


def wire_sql(alias: str) -> str:
    """A call's wire JSON as text, for a query with a row of ``calls`` (or of its columns)
    named ``alias``: the same columns, in the same form, as the reads below render."""
    columns = ", ".join(
        str(
            wire_column(Call, name, literal_column(f"{alias}.{name}")).compile(
                dialect=_PG, compile_kwargs={"literal_binds": True}
            )
        )
        + f" AS {name}"
        for name in Call.model_fields
    )
    return f"(SELECT row_to_json(w)::text FROM (SELECT {columns}) AS w)"


def event_rows(rendered: str, event_type: str) -> str:
    """INSERT of one outbox row per rendered call (as events.repository.record writes them),
    each waking the event listeners at commit."""
    return f"""
    INSERT INTO events (id, org_id, type, call_id, data)
    SELECT gen_random_uuid(), r.org_id, {event_type}, r.id, ('{{"call":' || r.body || '}}')::json
    FROM {rendered}
    RETURNING pg_notify('{EVENTS_CHANNEL}', id::text)
    """


def compiled(sql: str) -> DriverStatement:
    return for_driver(text(sql))


# Reads


def _call_json() -> ColumnElement[Any]:
    wire = select(*(wire_column(Call, name, CALLS.c[name]) for name in Call.model_fields))
    return json_of(wire.correlate(CALLS), "call", lateral=True)


def _select_bodies() -> Select[Any]:
    return select(as_bytes(_call_json()).label("body")).select_from(CALLS)


_VIEW_ONE = for_driver(
    org_scoped(_select_bodies(), CALLS.c).where(CALLS.c.id == bindparam("call_id"))
)


@lru_cache
def _view_page(filters: tuple[str, ...], direction: KeysetDirection) -> DriverStatement:
    page = org_scoped(_select_bodies(), CALLS.c)
    for name in filters:
        page = page.where(CALLS.c[name] == bindparam(name))
    return for_driver(keyset(page, CALLS.c.created_at, CALLS.c.id, direction))


async def get_body(session: AsyncSession, org_id: uuid.UUID, call_id: uuid.UUID) -> bytes | None:
    rows = await driver_fetch(session, _VIEW_ONE, {"org_id": org_id, "call_id": call_id})
    return rows[0]["body"] if rows else None


async def list_bodies(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    filters: Mapping[str, Any],
    cursor: Cursor | None,
    limit: int,
) -> list[bytes]:
    """The wire JSON of up to ``limit`` + 1 calls, in page order; ``filters`` by column."""
    statement = _view_page(tuple(sorted(filters)), keyset_direction(cursor))
    params = {"org_id": org_id, **filters, **keyset_params(cursor, limit)}
    return [row["body"] for row in await driver_fetch(session, statement, params)]


_CURSOR = for_driver(
    org_scoped(select(CALLS.c.created_at, CALLS.c.id), CALLS.c).where(
        CALLS.c.id == bindparam("call_id")
    )
)


async def get_cursor(
    session: AsyncSession, org_id: uuid.UUID, call_id: uuid.UUID, newer: bool
) -> Cursor | None:
    rows = await driver_fetch(session, _CURSOR, {"org_id": org_id, "call_id": call_id})
    return Cursor(rows[0]["created_at"], rows[0]["id"], newer) if rows else None


def _segments_json() -> ColumnElement[Any]:
    wire = select(
        *(
            wire_column(TranscriptSegment, name, SEGMENTS.c[name])
            for name in TranscriptSegment.model_fields
        )
    ).correlate(SEGMENTS)
    ordered = func.array_agg(
        aggregate_order_by(json_of(wire, "segment", lateral=True), SEGMENTS.c.sequence_no)
    )
    return (
        select(func.coalesce(func.array_to_json(ordered), EMPTY_ARRAY))
        .select_from(SEGMENTS)
        .where(SEGMENTS.c.call_id == CALLS.c.id)
        .correlate(CALLS)
        .scalar_subquery()
    )


_TRANSCRIPT = for_driver(
    org_scoped(
        select(
            as_bytes(
                json_of(
                    select(
                        CALLS.c.id.label("call_id"), _segments_json().label("segments")
                    ).correlate(CALLS),
                    "transcript",
                    lateral=True,
                )
            ).label("body")
        ).select_from(CALLS),
        CALLS.c,
    ).where(CALLS.c.id == bindparam("call_id"))
)


async def get_transcript(
    session: AsyncSession, org_id: uuid.UUID, call_id: uuid.UUID
) -> bytes | None:
    rows = await driver_fetch(session, _TRANSCRIPT, {"org_id": org_id, "call_id": call_id})
    return rows[0]["body"] if rows else None


# What a carrier is told about a call (see carriers.interface.CallState).
STATE_COLUMNS = """c.id, c.org_id, c.direction, c.to_number, c.from_number, c.status,
    c.voicemail_action, c.instructions, c.returns::text AS returns"""


def state_of(row: asyncpg.Record | RowMapping) -> CallState:
    returns = row["returns"]
    return CallState(
        id=row["id"],
        direction=row["direction"],
        to_number=row["to_number"],
        from_number=row["from_number"],
        status=row["status"],
        voicemail_action=row["voicemail_action"],
        instructions=row["instructions"],
        returns=pydantic_core.from_json(returns) if isinstance(returns, str) else returns,
    )


_STATE_COLUMNS = ("id", "org_id", "direction", "to_number", "from_number", "status")
_STATE = select(
    *(CALLS.c[name] for name in (*_STATE_COLUMNS, "voicemail_action", "instructions", "returns"))
).with_for_update()


async def lock_state(
    session: AsyncSession, org_id: uuid.UUID, call_id: uuid.UUID
) -> CallState | None:
    """The call, locked until the transaction ends: a test helper's or a cancel's check and
    move see one status, and a runner's move of the same call waits (then finds the status
    moved, and does nothing). Through the session, which so begins its transaction: the
    moves that follow on the driver join it."""
    statement = org_scoped(_STATE, CALLS.c, org_id).where(CALLS.c.id == call_id)
    row = (await session.execute(statement)).first()
    return None if row is None else state_of(row._mapping)


# Dispatch: the call, its call.queued event and the runner's wake-up, in one statement.

_INSERT = compiled(
    f"""
    WITH call AS (
        INSERT INTO calls (
            id, org_id, agent_id, direction, to_number, from_number, persona, instructions,
            prompt, context, returns, result, language, tools, voicemail_action, webhook_url,
            metadata, due_at
        )
        VALUES (
            :id, :org_id, :agent_id, :direction, :to_number, :from_number, :persona,
            :instructions, :prompt, CAST(:context AS json), CAST(:returns AS json),
            CAST(:result AS json), :language, CAST(:tools AS json), :voicemail_action,
            :webhook_url, CAST(:metadata AS json),
            statement_timestamp() + CAST(:first_in AS float8) * interval '1 second'
        )
        RETURNING *
    ),
    rendered AS (SELECT call.id, call.org_id, {wire_sql("call")} AS body FROM call),
    event AS ({event_rows("rendered r", "'call.queued'")}),
    wake AS (SELECT pg_notify('{CHANNEL}', '') AS woke)
    SELECT convert_to(r.body, 'UTF8') AS body, (SELECT count(*) FROM wake) AS woke
    FROM rendered r
    """
)


def json_text(value: Any) -> str | None:
    """JSON text as CompactJSON stores it (pydantic's serialization, so reads match schemas)."""
    return None if value is None else pydantic_core.to_json(value).decode()


async def insert_call(session: AsyncSession, values: Mapping[str, Any]) -> bytes:
    """Insert a queued call; returns its wire JSON. ``first_in``: seconds until its first
    step (None: it has none of its own)."""
    params = {
        **values,
        **{name: json_text(values[name]) for name in ("context", "returns", "result", "tools")},
        "metadata": json_text(values["metadata"]),
    }
    rows = await driver_fetch(session, _INSERT, params)
    body: bytes = rows[0]["body"]
    return body


# What dispatch reads first: the agent with the caller ID it asks for, or a legacy call's number.

_AGENT = compiled(
    """
    SELECT a.type, a.archived_at, a.persona, a.instructions, a.language, a.returns::text AS returns,
           a.tools::text AS tools, a.voicemail_action, a.webhook_url,
           (SELECT n.e164 FROM numbers n WHERE n.id = a.primary_number_id) AS primary_number,
           (CAST(:from_number AS text) IS NULL OR EXISTS (
               SELECT 1 FROM agent_numbers l JOIN numbers n ON n.id = l.number_id
               WHERE l.agent_id = a.id AND n.e164 = :from_number
           )) AS from_attached
    FROM agents a
    WHERE a.org_id = :org_id AND a.id = :agent_id
    """
)


async def dispatch_agent(
    session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID, from_number: str | None
) -> asyncpg.Record | None:
    rows = await driver_fetch(
        session, _AGENT, {"org_id": org_id, "agent_id": agent_id, "from_number": from_number}
    )
    return rows[0] if rows else None


_ORG_NUMBER = compiled(
    """
    SELECT n.e164 FROM numbers n
    WHERE n.org_id = :org_id AND n.status = 'active'
      AND (CAST(:e164 AS text) IS NULL OR n.e164 = :e164)
    ORDER BY n.purchased_at, n.id
    LIMIT 1
    """
)


async def active_number(session: AsyncSession, org_id: uuid.UUID, e164: str | None) -> str | None:
    """The org's active number ``e164``, or its oldest active number when None."""
    rows = await driver_fetch(session, _ORG_NUMBER, {"org_id": org_id, "e164": e164})
    return rows[0]["e164"] if rows else None


_INBOUND_AGENT = compiled(
    """
    SELECT n.e164 AS number, a.id, a.archived_at, a.persona, a.instructions, a.language,
           a.returns::text AS returns, a.tools::text AS tools, a.voicemail_action, a.webhook_url
    FROM numbers n
    LEFT JOIN agent_numbers l ON l.number_id = n.id AND l.agent_type = 'inbound'
    LEFT JOIN agents a ON a.id = l.agent_id AND a.archived_at IS NULL
    WHERE n.org_id = :org_id AND n.status = 'active' AND n.e164 = :e164
    """
)


async def inbound_agent(
    session: AsyncSession, org_id: uuid.UUID, e164: str
) -> asyncpg.Record | None:
    """The org's active number ``e164`` and the inbound agent answering it (columns null when
    none); None when the org has no such number."""
    rows = await driver_fetch(session, _INBOUND_AGENT, {"org_id": org_id, "e164": e164})
    return rows[0] if rows else None
