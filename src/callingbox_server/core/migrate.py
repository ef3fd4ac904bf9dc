"""Run the Alembic migrations from code (``callingbox-server migrate`` and ``serve``).

Every run holds a PostgreSQL advisory lock (``MIGRATION_LOCK_ID``, taken in migrations/env.py) for
its whole transaction: replicas that start together migrate one after the other, and those that
come second find the schema current and do nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

# pg_advisory_xact_lock's key: any bigint no other user of the database picks ("callbox" in ASCII).
MIGRATION_LOCK_ID = int.from_bytes(b"callbox", "big")


def migrations_dir() -> Path:
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_migrations"  # in a built wheel (see pyproject.toml)
    return packaged if packaged.is_dir() else package.parents[1] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
