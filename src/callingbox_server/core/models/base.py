"""The declarative base, its naming convention, and what the tables share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic_core
from sqlalchemy import JSON, Dialect, MetaData, TypeDecorator, text
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AGENT_TYPES = ("inbound", "outbound")
VOICEMAIL_ACTIONS = ("hangup", "leave_message")
NUMBER_TYPES = ("local", "toll_free")
NUMBER_STATUSES = ("active", "released")
KEY_MODES = ("live", "test")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# statement_timestamp(), not now(): rows written by successive statements of one transaction get
# distinct, ordered times; and not clock_timestamp(), which differs between two columns of one row
# (a new agent's updated_at must equal its created_at).
NOW = text("statement_timestamp()")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CompactJSON(TypeDecorator[Any]):
    """JSON stored compact, exactly as pydantic serializes it, so that PostgreSQL can render a
    representation that embeds it byte for byte as the API would (see core.db.wire)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], str | None]:
        def process(value: Any) -> str | None:
            return None if value is None else pydantic_core.to_json(value).decode()

        return process
