"""The event outbox: every change a webhook can report, written in the change's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from callingbox_server.core.models.base import NOW, Base, CompactJSON


class Event(Base):
    """One event (``call.ringing``, ``agent.updated``, ...) and the ``data`` of its envelope.

    ``data`` is JSON, not JSONB: its text is kept as written, so every delivery of the event
    sends the object's fields in the order the API sends them. ``call_id`` is no foreign key:
    the outbox is an append-only log, read by call id.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_org_id_created_at", "org_id", "created_at"),
        Index("ix_events_call_id", "call_id"),
        # The events not yet fanned out to webhook deliveries: few, whatever the outbox's size.
        Index(
            "ix_events_webhooks_pending",
            "created_at",
            postgresql_where=text("webhooks_fanned_out_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[uuid.UUID | None] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(CompactJSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=NOW)
    # Set when the webhook runner has made the event's deliveries (once, in that transaction).
    webhooks_fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
