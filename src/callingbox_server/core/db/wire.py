"""Wire JSON rendered by PostgreSQL, as PostgREST does: a read sends the bytes the database wrote.

``row_to_json`` writes compact JSON with the columns in select order, embeds ``json`` columns as
their stored text (written compact by the engine's serializer, see engine.py), and escapes strings
as pydantic does; timestamps are given as text in the API's RFC 3339 form. So the bytes equal what
the response schemas would serialize, which tests hold to (tests/domains/*/test_*views*).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    Text,
    cast,
    func,
    literal_column,
    type_coerce,
)

# "2026-11-28T12:00:00.123456Z", as core.schemas.format_timestamp writes it.
_RFC3339 = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _is_datetime(annotation: Any) -> bool:
    if annotation is datetime:
        return True
    if get_origin(annotation) is Annotated:
        return _is_datetime(get_args(annotation)[0])
    return any(_is_datetime(arg) for arg in get_args(annotation))


def is_timestamp(model: type[BaseModel], field: str) -> bool:
    """Whether the wire schema sends ``field`` as a timestamp (``datetime``, optional or not)."""
    return _is_datetime(model.model_fields[field].annotation)


def wire_column(
    model: type[BaseModel], field: str, column: ColumnElement[Any]
) -> ColumnElement[Any]:
    """``column`` as the wire schema ``model`` sends ``field``."""
    if is_timestamp(model, field):
        return func.to_char(func.timezone("UTC", column), _RFC3339).label(field)
    return column.label(field)


def json_of(rows: Select[Any], alias: str, *, lateral: bool = False) -> ColumnElement[Any]:
    """One JSON object per row of ``rows`` (its columns, in order); ``lateral`` when ``rows``
    refers to a table of the enclosing query."""
    source = rows.lateral(alias) if lateral else rows.subquery(alias)
    return func.row_to_json(source.table_valued())


def as_bytes(json_text: ColumnElement[Any]) -> ColumnElement[bytes]:
    """JSON as UTF-8 bytes (bytea): asyncpg hands them over without decoding a str."""
    return type_coerce(func.convert_to(cast(json_text, Text), "UTF8"), LargeBinary)


EMPTY_ARRAY: ColumnElement[Any] = literal_column("'[]'::json")
