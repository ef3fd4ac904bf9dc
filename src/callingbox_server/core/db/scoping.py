"""Tenancy in SQL: every statement on an org's rows is narrowed to one org here, not by hand.

Repositories build their statements on ``org_scoped``, as Polar's repositories build theirs on
``get_base_statement()``: a statement that forgets the org cannot be written without going
around it, and a reader checks tenancy in one place.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import BindParameter, ColumnElement, bindparam

# The org of a driver statement compiled once (see driver.for_driver): given at each call.
ORG_ID: BindParameter[Any] = bindparam("org_id")


class _Filterable(Protocol):
    """A SELECT, UPDATE or DELETE."""

    def where(self, *whereclause: Any) -> Self: ...


StatementT = TypeVar("StatementT", bound=_Filterable)


def org_scoped(
    statement: StatementT, owner: Any, org_id: uuid.UUID | BindParameter[Any] = ORG_ID
) -> StatementT:
    """``statement`` narrowed to the rows of ``owner`` (a mapped class, or a table's ``.c``)
    that belong to ``org_id``: a value, or the ``org_id`` parameter of a compiled statement."""
    column: ColumnElement[uuid.UUID] = owner.org_id
    return statement.where(column == org_id)
