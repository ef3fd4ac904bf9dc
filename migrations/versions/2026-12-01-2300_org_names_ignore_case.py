"""Org names are trimmed and unique whatever their case: "Acme", " acme" and "acme" are one org.

Names are trimmed first. Two existing orgs whose names then differ only in case cannot be merged
by a migration (each has its own keys and agents), so the upgrade stops and names them instead.

Revision ID: a5aa225817e6
Revises: e6f10c0a1b2c
Create Date: 2026-12-01 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a5aa225817e6"
down_revision: str | None = "e6f10c0a1b2c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Trimmed as Python's str.strip() trims a name typed at the command line, as far as ASCII goes.
_CLASHES = r"""
    SELECT string_agg(quote_literal(name), ', ' ORDER BY created_at) AS names
    FROM orgs
    GROUP BY lower(btrim(name, E' \t\n\r\f\v'))
    HAVING count(*) > 1
"""
_TRIM = r"""
    UPDATE orgs SET name = btrim(name, E' \t\n\r\f\v')
    WHERE name <> btrim(name, E' \t\n\r\f\v')
"""


def upgrade() -> None:
    clashes = [row.names for row in op.get_bind().execute(sa.text(_CLASHES))]
    if clashes:
        names = "; ".join(clashes)
        raise RuntimeError(
            "these organizations differ only in case or surrounding spaces, which the new "
            f"unique index forbids: {names}. Rename all but one of each (the name column of "
            "the orgs table), then migrate again."
        )
    op.execute(_TRIM)
    op.drop_constraint(op.f("uq_orgs_name"), "orgs", type_="unique")
    op.create_index("uq_orgs_lower_name", "orgs", [sa.literal_column("lower(name)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_orgs_lower_name", table_name="orgs")
    op.create_unique_constraint(op.f("uq_orgs_name"), "orgs", ["name"])
