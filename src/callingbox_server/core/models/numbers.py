"""Phone numbers."""

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
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from callingbox_server.core.models.base import (
    NOW,
    NUMBER_STATUSES,
    NUMBER_TYPES,
    Base,
    _one_of,
)


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
