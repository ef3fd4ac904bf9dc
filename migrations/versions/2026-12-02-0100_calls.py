"""Calls, their transcript segments, and the due time of each call's next step (``due_at``).

Revision ID: c4115a11ca11
Revises: a5aa225817e6
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4115a11ca11"
down_revision: str | None = "a5aa225817e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TERMINAL = "status IN ('completed', 'no_answer', 'busy', 'canceled', 'failed')"


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("to_number", sa.String(length=16), nullable=False),
        sa.Column("from_number", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("answered_by", sa.String(length=16), nullable=True),
        sa.Column("persona", sa.Text(), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("returns", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("result_status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("result_error", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=64), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=True),
        sa.Column("voicemail_action", sa.String(length=16), nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("webhook_error", sa.Text(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("billed_duration_seconds", sa.Integer(), nullable=True),
        sa.Column("billing_amount_milli_cents", sa.Integer(), nullable=True),
        sa.Column(
            "reservation_status", sa.String(length=16), server_default="reserved", nullable=False
        ),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("hangup_cause", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            f"({_TERMINAL}) = (ended_at IS NOT NULL)",
            name=op.f("ck_calls_ended_at"),
        ),
        sa.CheckConstraint(
            f"NOT ({_TERMINAL}) OR due_at IS NULL",
            name=op.f("ck_calls_terminal_due"),
        ),
        sa.CheckConstraint(
            "answered_by IS NULL OR answered_by IN ('human', 'machine')",
            name=op.f("ck_calls_answered_by"),
        ),
        sa.CheckConstraint("direction IN ('outbound', 'inbound')", name=op.f("ck_calls_direction")),
        sa.CheckConstraint(
            "reservation_status IN ('reserved', 'settled', 'released')",
            name=op.f("ck_calls_reservation_status"),
        ),
        sa.CheckConstraint(
            "result_status IN ('pending', 'completed', 'failed')",
            name=op.f("ck_calls_result_status"),
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'initiated', 'ringing', 'in_progress', "
            "'completed', 'no_answer', 'busy', 'canceled', 'failed')",
            name=op.f("ck_calls_status"),
        ),
        sa.CheckConstraint(
            "voicemail_action IN ('hangup', 'leave_message')",
            name=op.f("ck_calls_voicemail_action"),
        ),
        sa.CheckConstraint(
            "webhook_status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_calls_webhook_status"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id", "org_id"],
            ["agents.id", "agents.org_id"],
            name=op.f("fk_calls_agent_id_org_id_agents"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_calls_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    op.create_index(
        "ix_calls_due_at",
        "calls",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index(
        "ix_calls_org_agent_page", "calls", ["org_id", "agent_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_calls_org_direction_page",
        "calls",
        ["org_id", "direction", "created_at", "id"],
        unique=False,
    )
    op.create_index("ix_calls_org_page", "calls", ["org_id", "created_at", "id"], unique=False)
    op.create_index(
        "ix_calls_org_status_page", "calls", ["org_id", "status", "created_at", "id"], unique=False
    )
    op.create_table(
        "call_transcript_segments",
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("sequence_no", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "role IN ('agent', 'caller')", name=op.f("ck_call_transcript_segments_role")
        ),
        sa.CheckConstraint(
            "sequence_no >= 1", name=op.f("ck_call_transcript_segments_sequence_no")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_transcript_segments_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", "sequence_no", name=op.f("pk_call_transcript_segments")),
    )


def downgrade() -> None:
    op.drop_table("call_transcript_segments")
    op.drop_index("ix_calls_org_status_page", table_name="calls")
    op.drop_index("ix_calls_org_page", table_name="calls")
    op.drop_index("ix_calls_org_direction_page", table_name="calls")
    op.drop_index("ix_calls_org_agent_page", table_name="calls")
    op.drop_index(
        "ix_calls_due_at", table_name="calls", postgresql_where=sa.text("due_at IS NOT NULL")
    )
    op.drop_table("calls")
