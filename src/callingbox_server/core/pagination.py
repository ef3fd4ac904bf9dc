"""Keyset pages (section 1.1 of the contract): the query, the cursor, the statement and the page."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, bindparam, tuple_

from callingbox_server.core.errors import InvalidRequest
from callingbox_server.core.schemas import QueryInt, RequestModel


class PageQuery(RequestModel):
    limit: QueryInt = Field(default=20, ge=1, le=100, description="Page size, 1 to 100.")
    starting_after: uuid.UUID | None = Field(
        default=None, description="Return items older than the item with this id."
    )
    ending_before: uuid.UUID | None = Field(
        default=None, description="Return items newer than the item with this id."
    )


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: the cursor item's sort key, and which side of it is wanted."""

    created_at: datetime
    id: uuid.UUID
    newer: bool


KeysetDirection = Literal["older", "newer"] | None
CursorLookup = Callable[[uuid.UUID, bool], Awaitable["Cursor | None"]]


async def resolve_cursor(query: PageQuery, noun: str, lookup: CursorLookup) -> Cursor | None:
    """The page's starting point, or None for the first page.

    A cursor must name an object of the caller's collection; any status counts (an item archived
    or released between two page fetches must not break the walk).
    """
    if query.starting_after is not None and query.ending_before is not None:
        raise InvalidRequest("starting_after and ending_before cannot be used together")
    newer = query.ending_before is not None
    name, object_id = (
        ("ending_before", query.ending_before)
        if newer
        else ("starting_after", query.starting_after)
    )
    if object_id is None:
        return None
    cursor = await lookup(object_id, newer)
    if cursor is None:
        raise InvalidRequest(f"invalid query parameter {name}: no such {noun} {object_id}")
    return cursor


def keyset(
    statement: Select[Any],
    created_at: ColumnElement[datetime],
    id_: ColumnElement[uuid.UUID],
    direction: KeysetDirection,
) -> Select[Any]:
    """Order newest first by (created_at, id) and seek past the cursor: no OFFSET, any depth.

    The statement is built once per direction and compiled once (see db.for_driver): the cursor
    and the limit are its parameters ``at``, ``at_id`` and ``limit`` (see keyset_params).
    """
    key = tuple_(created_at, id_)
    at = tuple_(bindparam("at", type_=created_at.type), bindparam("at_id", type_=id_.type))
    if direction == "newer":
        statement = statement.where(key > at).order_by(created_at, id_)
    elif direction == "older":
        statement = statement.where(key < at).order_by(created_at.desc(), id_.desc())
    else:
        statement = statement.order_by(created_at.desc(), id_.desc())
    return statement.limit(bindparam("limit"))


def keyset_direction(cursor: Cursor | None) -> KeysetDirection:
    return None if cursor is None else ("newer" if cursor.newer else "older")


def keyset_params(cursor: Cursor | None, limit: int) -> dict[str, Any]:
    """The parameters of a keyset statement: one row more than ``limit`` tells of more."""
    if cursor is None:
        return {"limit": limit + 1}
    return {"limit": limit + 1, "at": cursor.created_at, "at_id": cursor.id}


T = TypeVar("T")


def page_of(rows: Sequence[T], cursor: Cursor | None, limit: int) -> tuple[list[T], bool]:
    """Trim the probe row; pages fetched towards newer items come back newest first too."""
    has_more = len(rows) > limit
    items = list(rows[:limit])
    if cursor is not None and cursor.newer:
        items.reverse()
    return items, has_more


def page_body(bodies: Sequence[bytes], cursor: Cursor | None, limit: int) -> bytes:
    """A page's JSON from its items' JSON (``limit`` + 1 of them tell of more), byte for byte
    what ``Page`` would serialize, without decoding the items."""
    items, has_more = page_of(bodies, cursor, limit)
    return b'{"data":[%b],"has_more":%b}' % (b",".join(items), b"true" if has_more else b"false")


def _page_example(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A page's OpenAPI example: one item, from the item model's own example."""
    items = model.__pydantic_generic_metadata__["args"]
    extra = items[0].model_config.get("json_schema_extra") if items else None
    if isinstance(extra, dict) and isinstance(extra.get("examples"), list):
        schema["examples"] = [{"data": extra["examples"][:1], "has_more": False}]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)

    data: list[T]
    has_more: bool
