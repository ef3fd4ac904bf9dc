"""Calls, their transcripts, and the due time of each call's next step."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callingbox_server.core.models.base import NOW, VOICEMAIL_ACTIONS, Base, CompactJSON, _one_of

CALL_DIRECTIONS = ("outbound", "inbound")
CALL_STATUSES = (
    "queued",
    "initiated",
    "ringing",
    "in_progress",
    "completed",
    "no_answer",
    "busy",
    "canceled",
    "failed",
)
TERMINAL_STATUSES = ("completed", "no_answer", "busy", "canceled", "failed")
ANSWERED_BY = ("human", "machine")
RESULT_STATUSES = ("pending", "completed", "failed")
WEBHOOK_STATUSES = ("pending", "delivered", "failed")
RESERVATION_STATUSES = ("reserved", "settled", "released")
SEGMENT_ROLES = ("agent", "caller")


class Call(Base):
    """One execution of an agent. ``due_at`` is when the carrier's next step of the call is due
    (null: nothing to do until someone else moves it); the runner claims a due call by pushing
    ``due_at`` forward by its lease, in the same statement, so a claim that dies simply comes due
    again."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(_one_of("direction", CALL_DIRECTIONS), name="direction"),
        CheckConstraint(_one_of("status", CALL_STATUSES), name="status"),
        CheckConstraint(
            f"answered_by IS NULL OR {_one_of('answered_by', ANSWERED_BY)}", name="answered_by"
        ),
        CheckConstraint(_one_of("result_status", RESULT_STATUSES), name="result_status"),
        CheckConstraint(_one_of("webhook_status", WEBHOOK_STATUSES), name="webhook_status"),
        CheckConstraint(
            _one_of("reservation_status", RESERVATION_STATUSES), name="reservation_status"
        ),
        CheckConstraint(_one_of("voicemail_action", VOICEMAIL_ACTIONS), name="voicemail_action"),
        # A terminal call has ended, is settled or released, and has nothing left to do.
        CheckConstraint(
            f"({_one_of('status', TERMINAL_STATUSES)}) = (ended_at IS NOT NULL)", name="ended_at"
        ),
        CheckConstraint(
            f"NOT ({_one_of('status', TERMINAL_STATUSES)}) OR due_at IS NULL", name="terminal_due"
        ),
        # Same org on both sides: an agent's calls are its org's.
        ForeignKeyConstraint(["agent_id", "org_id"], ["agents.id", "agents.org_id"]),
        Index("ix_calls_org_page", "org_id", "created_at", "id"),
        Index("ix_calls_org_agent_page", "org_id", "agent_id", "created_at", "id"),
        Index("ix_calls_org_status_page", "org_id", "status", "created_at", "id"),
        Index("ix_calls_org_direction_page", "org_id", "direction", "created_at", "id"),
        # What the runner scans: only calls with a step to come.
        Index("ix_calls_due_at", "due_at", postgresql_where=text("due_at IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column()
    direction: Mapped[str] = mapped_column(String(16))
    to_number: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    answered_by: Mapped[str | None] = mapped_column(String(16))
    persona: Mapped[str | None] = mapped_column(Text)
    instructions: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(CompactJSON)
    returns: Mapped[dict[str, Any] | None] = mapped_column(CompactJSON(none_as_null=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(CompactJSON(none_as_null=True))
    result_status: Mapped[str] = mapped_column(String(16), server_default="pending")
    result_error: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(64))
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(CompactJSON(none_as_null=True))
    voicemail_action: Mapped[str] = mapped_column(String(16))
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    webhook_status: Mapped[str] = mapped_column(String(16), server_default="pending")
    webhook_error: Mapped[str | None] = mapped_column(Text)
    # "metadata" is the declarative base's own attribute: the column keeps the wire name.
    metadata_: Mapped[dict[str, str]] = mapped_column("metadata", CompactJSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    billed_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    billing_amount_milli_cents: Mapped[int | None] = mapped_column(Integer)
    reservation_status: Mapped[str] = mapped_column(String(16), server_default="reserved")
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CallTranscriptSegment(Base):
    """One utterance of a call, in order (``sequence_no`` from 1)."""

    __tablename__ = "call_transcript_segments"
    __table_args__ = (
        CheckConstraint(_one_of("role", SEGMENT_ROLES), name="role"),
        CheckConstraint("sequence_no >= 1", name="sequence_no"),
    )

    call_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True
    )
    sequence_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))
