"""Webhooks: endpoints, deliveries, the attempt log, each org's default signing secret, and a
mark on every event once its deliveries are made.

Events written before this revision are marked as fanned out: history is not sent.

Revision ID: d5126eb00c12
Revises: a5aa225817e6
Create Date: 2026-12-02 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d5126eb00c12"
down_revision: str | None = "c4115a11ca11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("statement_timestamp()")
_SECRET = sa.text(
    "'whsec_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"
)


def _timestamp(name: str, *, default: bool = True) -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=_NOW if default else None, nullable=False
    )


def upgrade() -> None:
    op.add_column(
        "events", sa.Column("webhooks_fanned_out_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute("UPDATE events SET webhooks_fanned_out_at = created_at")
    op.create_index(
        "ix_events_webhooks_pending",
        "events",
        ["created_at"],
        postgresql_where=sa.text("webhooks_fanned_out_at IS NULL"),
    )
    op.create_table(
        "org_signing_secrets",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.String(length=100), server_default=_SECRET, nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_org_signing_secrets_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_org_signing_secrets")),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("enabled_events", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="enabled", nullable=False),
        sa.Column("disabled_reason", sa.String(length=32), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("secret", sa.String(length=100), server_default=_SECRET, nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('enabled', 'disabled')", name=op.f("ck_webhook_endpoints_status")
        ),
        sa.CheckConstraint(
            "disabled_reason IS NULL OR disabled_reason IN ('manual', 'too_many_failures')",
            name=op.f("ck_webhook_endpoints_disabled_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_webhook_endpoints_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        "ix_webhook_endpoints_org_id_created_at",
        "webhook_endpoints",
        ["org_id", "created_at", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=True),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("host", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=9), server_default="pending", nullable=False),
        sa.Column("attempt_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("manual_retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("automatic_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_trigger", sa.String(length=9), server_default="automatic", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_response_status", sa.Integer(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("lease_token", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'exhausted')",
            name=op.f("ck_webhook_deliveries_status"),
        ),
        sa.CheckConstraint(
            "next_trigger IN ('automatic', 'manual')",
            name=op.f("ck_webhook_deliveries_next_trigger"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_webhook_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_webhook_deliveries_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "event_id", "endpoint_id", name=op.f("uq_webhook_deliveries_event_id_endpoint_id")
        ),
    )
    op.create_index(
        "uq_webhook_deliveries_event_id_inline",
        "webhook_deliveries",
        ["event_id"],
        unique=True,
        postgresql_where=sa.text("endpoint_id IS NULL"),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_org_id_created_at",
        "webhook_deliveries",
        ["org_id", "created_at", "id"],
    )
    op.create_index("ix_webhook_deliveries_endpoint_id", "webhook_deliveries", ["endpoint_id"])
    op.create_index("ix_webhook_deliveries_call_id", "webhook_deliveries", ["call_id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=9), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "trigger IN ('automatic', 'manual')", name=op.f("ck_webhook_attempts_trigger")
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_webhook_attempts_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
        sa.UniqueConstraint(
            "delivery_id",
            "attempt_number",
            name=op.f("uq_webhook_attempts_delivery_id_attempt_number"),
        ),
    )


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_call_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_endpoint_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_org_id_created_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_index("uq_webhook_deliveries_event_id_inline", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_endpoints_org_id_created_at", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_table("org_signing_secrets")
    op.drop_index("ix_events_webhooks_pending", table_name="events")
    op.drop_column("events", "webhooks_fanned_out_at")
