"""Webhooks: an index of pending deliveries by host and due time, so that a claim reads each
host's oldest due rows without walking another host's backlog.

Revision ID: e7c3a9d41f20
Revises: d5126eb00c12
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e7c3a9d41f20"
down_revision: str | None = "d5126eb00c12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_host_due",
        "webhook_deliveries",
        ["host", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_host_due", table_name="webhook_deliveries")
