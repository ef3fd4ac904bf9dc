"""Agents, and the numbers attached to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callingbox_server.core.models.base import (
    AGENT_TYPES,
    NOW,
    VOICEMAIL_ACTIONS,
    Base,
    CompactJSON,
    _one_of,
)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint(_one_of("type", AGENT_TYPES), name="type"),
        CheckConstraint(_one_of("voicemail_action", VOICEMAIL_ACTIONS), name="voicemail_action"),
        CheckConstraint(
            "archived_at IS NULL OR primary_number_id IS NULL", name="archived_primary"
        ),
        UniqueConstraint("id", "org_id"),
        UniqueConstraint("id", "type"),
        # The primary number is always one of the agent's attached numbers. Deferred, so that a
        # transaction can attach and promote in any order and is checked once, at commit.
        ForeignKeyConstraint(
            ["id", "primary_number_id"],
            ["agent_numbers.agent_id", "agent_numbers.number_id"],
            name="fk_agents_primary_number_attached",
            deferrable=True,
            initially="DEFERRED",
            use_alter=True,
        ),
        # Keyset pages: one index per list shape, so that neither archived agents nor agents of
        # the other type make a page slower (include_archived=true with a type filter excepted).
        Index("ix_agents_org_page", "org_id", "created_at", "id"),
        Index(
            "ix_agents_org_live_page",
            "org_id",
            "created_at",
            "id",
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index(
            "ix_agents_org_type_live_page",
            "org_id",
            "type",
            "created_at",
            "id",
            postgresql_where=text("archived_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    persona: Mapped[str | None] = mapped_column(Text)
    instructions: Mapped[str | None] = mapped_column(Text)
    voice: Mapped[str | None] = mapped_column(String(100))
    language: Mapped[str | None] = mapped_column(String(64))
    # JSON (not JSONB) keeps the caller's key order, so what was sent is what comes back.
    returns: Mapped[dict[str, Any] | None] = mapped_column(CompactJSON(none_as_null=True))
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(CompactJSON(none_as_null=True))
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    voicemail_action: Mapped[str] = mapped_column(String(16), server_default="hangup")
    primary_number_id: Mapped[uuid.UUID | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class AgentNumber(Base):
    """An attachment of a number to an agent; ``seq`` is the attach order."""

    __tablename__ = "agent_numbers"
    __table_args__ = (
        # Same org on both sides, and agent_type always equal to the agent's (immutable) type.
        ForeignKeyConstraint(
            ["agent_id", "org_id"], ["agents.id", "agents.org_id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["agent_id", "agent_type"], ["agents.id", "agents.type"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["number_id", "org_id"], ["numbers.id", "numbers.org_id"], ondelete="CASCADE"
        ),
        CheckConstraint(_one_of("agent_type", AGENT_TYPES), name="agent_type"),
        # One inbound agent per number: the attach race is decided here.
        Index(
            "uq_agent_numbers_inbound",
            "number_id",
            unique=True,
            postgresql_where=text("agent_type = 'inbound'"),
        ),
        Index("ix_agent_numbers_number_id_seq", "number_id", "seq"),
        UniqueConstraint("seq"),
    )

    agent_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    number_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column()
    agent_type: Mapped[str] = mapped_column(String(16))
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    attached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
