"""Stored outcomes of POSTs sent with an Idempotency-Key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from callingbox_server.core.models.base import (
    NOW,
    Base,
)


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
