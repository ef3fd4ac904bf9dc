"""Agents' returns and tools stored compact, as the API serializes them.

PostgreSQL now renders agents for the wire and embeds these JSON columns as stored, so rows
written before (with json.dumps's spaces) are rewritten the way the API has always sent them:
decoded and serialized by pydantic, which keeps every value and every ETag as it was.

Revision ID: e6f10c0a1b2c
Revises: b7e1d2c3a4f5
Create Date: 2026-12-01 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import pydantic_core
import sqlalchemy as sa
from alembic import op

revision: str = "e6f10c0a1b2c"
down_revision: str | None = "b7e1d2c3a4f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def _compact(text: str | None) -> str | None:
    return None if text is None else pydantic_core.to_json(pydantic_core.from_json(text)).decode()


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, returns::text, tools::text FROM agents "
            "WHERE returns IS NOT NULL OR tools IS NOT NULL"
        )
    ).all()
    update = sa.text(
        "UPDATE agents SET returns = CAST(:returns AS json), tools = CAST(:tools AS json) "
        "WHERE id = :id"
    )
    for low in range(0, len(rows), _BATCH):
        batch = rows[low : low + _BATCH]
        bind.execute(
            update,
            [{"id": i, "returns": _compact(r), "tools": _compact(t)} for i, r, t in batch],
        )


def downgrade() -> None:
    """Compact JSON is JSON: the earlier code reads it as it is."""
