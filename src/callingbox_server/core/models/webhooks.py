"""Webhooks: endpoints, one delivery per (event, destination), every attempt, and each org's
default signing secret (for the calls' inline ``webhook_url``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from callingbox_server.core.models.base import NOW, Base, _one_of

ENDPOINT_STATUSES = ("enabled", "disabled")
DISABLED_REASONS = ("manual", "too_many_failures")
DELIVERY_STATUSES = ("pending", "delivered", "exhausted")
TRIGGERS = ("automatic", "manual")
# A signing secret, made by PostgreSQL: gen_random_uuid() draws from its strong random source, so
# two of them carry 244 random bits. One definition for endpoints, orgs and rotation.
NEW_SECRET = text(
    "'whsec_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"
)


class OrgSigningSecret(Base):
    """The secret that signs deliveries to a call's inline ``webhook_url``: one per org."""

    __tablename__ = "org_signing_secrets"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(100), server_default=NEW_SECRET)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)


class WebhookEndpoint(Base):
    """An org's webhook endpoint. Deleting one keeps the row (``deleted_at``): its deliveries
    and their attempt log still name it."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        CheckConstraint(_one_of("status", ENDPOINT_STATUSES), name="status"),
        CheckConstraint(
            f"disabled_reason IS NULL OR {_one_of('disabled_reason', DISABLED_REASONS)}",
            name="disabled_reason",
        ),
        Index(
            "ix_webhook_endpoints_org_id_created_at",
            "org_id",
            "created_at",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(1000))
    enabled_events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    status: Mapped[str] = mapped_column(String(8), server_default="enabled")
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    secret: Mapped[str] = mapped_column(String(100), server_default=NEW_SECRET)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One event to one destination: an endpoint, or (``endpoint_id`` null) the call's inline URL.

    A runner holds a delivery while it attempts it: claiming sets ``lease_token`` and moves
    ``next_attempt_at`` to when the lease ends (a runner that dies leaves the delivery due
    again then); only the holder of the token may record the attempt.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint(_one_of("next_trigger", TRIGGERS), name="next_trigger"),
        # One delivery per (event, destination), however often a fan-out is repeated.
        UniqueConstraint("event_id", "endpoint_id"),
        Index(
            "uq_webhook_deliveries_event_id_inline",
            "event_id",
            unique=True,
            postgresql_where=text("endpoint_id IS NULL"),
        ),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # The claim's: one probe per host, then that host's oldest due (deliveries.CLAIM).
        Index(
            "ix_webhook_deliveries_host_due",
            "host",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_org_id_created_at", "org_id", "created_at", "id"),
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id"),
        Index("ix_webhook_deliveries_call_id", "call_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("webhook_endpoints.id"))
    call_id: Mapped[uuid.UUID | None] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    # The URL's host[:port], lower case: attempts at once are capped per host.
    host: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(9), server_default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, server_default="0")
    manual_retry_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Failed automatic attempts: the step of the retry schedule (manual ones do not advance it).
    automatic_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    next_trigger: Mapped[str] = mapped_column(String(9), server_default="automatic")
    # Null while pending means paused: the endpoint is disabled.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_response_status: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    lease_token: Mapped[uuid.UUID | None] = mapped_column()


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery, as the attempt log shows it."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        CheckConstraint(_one_of("trigger", TRIGGERS), name="trigger"),
        # A late result from a runner that lost its lease can never count twice.
        UniqueConstraint("delivery_id", "attempt_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt_number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(9))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
