"""Every table. Invariants that must survive concurrent requests are constraints here, not code."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AGENT_TYPES = ("inbound", "outbound")
VOICEMAIL_ACTIONS = ("hangup", "leave_message")
NUMBER_TYPES = ("local", "toll_free")
NUMBER_STATUSES = ("active", "released")
KEY_MODES = ("live", "test")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# statement_timestamp(), not now(): rows written by successive statements of one transaction get
# distinct, ordered times; and not clock_timestamp(), which differs between two columns of one row
# (a new agent's updated_at must equal its created_at).
NOW = text("statement_timestamp()")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_one_of("mode", KEY_MODES), name="mode"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(8))
    # HMAC-SHA256 of the whole key; the key itself is never stored.
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Number(Base):
    __tablename__ = "numbers"
    __table_args__ = (
        CheckConstraint(_one_of("number_type", NUMBER_TYPES), name="number_type"),
        CheckConstraint(_one_of("status", NUMBER_STATUSES), name="status"),
        CheckConstraint("(status = 'released') = (released_at IS NOT NULL)", name="released_at"),
        # Target of the composite foreign keys that keep links inside one org.
        UniqueConstraint("id", "org_id"),
        # One owner per active phone number: the purchase race is decided here.
        Index(
            "uq_numbers_e164_active",
            "e164",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_numbers_org_page", "org_id", "status", "purchased_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(16))
    friendly_name: Mapped[str | None] = mapped_column(String(200))
    country_code: Mapped[str] = mapped_column(String(2))
    number_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    monthly_cost_cents: Mapped[int] = mapped_column(Integer)
    purchased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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
    returns: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
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


class IdempotencyKey(Base):
    """The stored outcome of a POST sent with an ``Idempotency-Key``, replayed on a retry."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint("status_code BETWEEN 200 AND 499", name="status_code"),
        # Pruning deletes by age.
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # SHA-256 of the method, the path and the body: a retry must send the same request.
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
