"""The event outbox: every change a webhook can report, written in the change's transaction.

Revision ID: b7e1d2c3a4f5
Revises: 730dfe804dbe
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e1d2c3a4f5"
down_revision: str | None = "730dfe804dbe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_events_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_org_id_created_at", "events", ["org_id", "created_at"])
    op.create_index("ix_events_call_id", "events", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_events_call_id", table_name="events")
    op.drop_index("ix_events_org_id_created_at", table_name="events")
    op.drop_table("events")
