"""Organizations, API keys, numbers, agents and their attachments.

The binding rules live in the schema: one owner per active phone number
(uq_numbers_e164_active), one inbound agent per number (uq_agent_numbers_inbound), links that
stay inside one org and match the agent's type (composite foreign keys), and a primary number
that is always attached (fk_agents_primary_number_attached, deferred to commit).

Revision ID: ae5cb0fa0621
Revises:
Create Date: 2026-11-28 12:48:56.574912
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ae5cb0fa0621"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
        sa.UniqueConstraint("name", name=op.f("uq_orgs_name")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("persona", sa.Text(), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("voice", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=64), nullable=True),
        sa.Column("returns", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("tools", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "voicemail_action", sa.String(length=16), server_default="hangup", nullable=False
        ),
        sa.Column("primary_number_id", sa.Uuid(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("type IN ('inbound', 'outbound')", name=op.f("ck_agents_type")),
        sa.CheckConstraint(
            "voicemail_action IN ('hangup', 'leave_message')",
            name=op.f("ck_agents_voicemail_action"),
        ),
        sa.CheckConstraint(
            "archived_at IS NULL OR primary_number_id IS NULL",
            name=op.f("ck_agents_archived_primary"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_agents_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("id", "org_id", name=op.f("uq_agents_id_org_id")),
        sa.UniqueConstraint("id", "type", name=op.f("uq_agents_id_type")),
    )
    op.create_index("ix_agents_org_page", "agents", ["org_id", "created_at", "id"], unique=False)
    op.create_index(
        "ix_agents_org_live_page",
        "agents",
        ["org_id", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_index(
        "ix_agents_org_type_live_page",
        "agents",
        ["org_id", "type", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("mode IN ('live', 'test')", name=op.f("ck_api_keys_mode")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_api_keys_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_org_id"), "api_keys", ["org_id"], unique=False)
    op.create_table(
        "numbers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("friendly_name", sa.String(length=200), nullable=True),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("number_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("monthly_cost_cents", sa.Integer(), nullable=False),
        sa.Column(
            "purchased_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(status = 'released') = (released_at IS NOT NULL)", name=op.f("ck_numbers_released_at")
        ),
        sa.CheckConstraint(
            "number_type IN ('local', 'toll_free')", name=op.f("ck_numbers_number_type")
        ),
        sa.CheckConstraint("status IN ('active', 'released')", name=op.f("ck_numbers_status")),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_numbers_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_numbers")),
        sa.UniqueConstraint("id", "org_id", name=op.f("uq_numbers_id_org_id")),
    )
    op.create_index(
        "ix_numbers_org_page", "numbers", ["org_id", "status", "purchased_at", "id"], unique=False
    )
    op.create_index(
        "uq_numbers_e164_active",
        "numbers",
        ["e164"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "agent_numbers",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("number_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("agent_type", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "attached_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "agent_type IN ('inbound', 'outbound')", name=op.f("ck_agent_numbers_agent_type")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id", "agent_type"],
            ["agents.id", "agents.type"],
            name=op.f("fk_agent_numbers_agent_id_agent_type_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id", "org_id"],
            ["agents.id", "agents.org_id"],
            name=op.f("fk_agent_numbers_agent_id_org_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["number_id", "org_id"],
            ["numbers.id", "numbers.org_id"],
            name=op.f("fk_agent_numbers_number_id_org_id_numbers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "number_id", name=op.f("pk_agent_numbers")),
        sa.UniqueConstraint("seq", name=op.f("uq_agent_numbers_seq")),
    )
    op.create_index(
        "ix_agent_numbers_number_id_seq", "agent_numbers", ["number_id", "seq"], unique=False
    )
    op.create_index(
        "uq_agent_numbers_inbound",
        "agent_numbers",
        ["number_id"],
        unique=True,
        postgresql_where=sa.text("agent_type = 'inbound'"),
    )
    # Added once agent_numbers exists: the two tables refer to each other.
    op.create_foreign_key(
        "fk_agents_primary_number_attached",
        "agents",
        "agent_numbers",
        ["id", "primary_number_id"],
        ["agent_id", "number_id"],
        deferrable=True,
        initially="DEFERRED",
    )


def downgrade() -> None:
    op.drop_constraint("fk_agents_primary_number_attached", "agents", type_="foreignkey")
    op.drop_index(
        "uq_agent_numbers_inbound",
        table_name="agent_numbers",
        postgresql_where=sa.text("agent_type = 'inbound'"),
    )
    op.drop_index("ix_agent_numbers_number_id_seq", table_name="agent_numbers")
    op.drop_table("agent_numbers")
    op.drop_index(
        "uq_numbers_e164_active",
        table_name="numbers",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index("ix_numbers_org_page", table_name="numbers")
    op.drop_table("numbers")
    op.drop_index(op.f("ix_api_keys_org_id"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_agents_org_type_live_page", table_name="agents")
    op.drop_index("ix_agents_org_live_page", table_name="agents")
    op.drop_index("ix_agents_org_page", table_name="agents")
    op.drop_table("agents")
    op.drop_table("orgs")
