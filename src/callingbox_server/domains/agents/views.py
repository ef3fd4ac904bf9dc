"""An agent's one wire representation: GETs, lists and every mutation response render through
here, from the rows of ``repository.get_view`` and ``list_view``, so that a GET's ETag and an
If-Match comparison can never disagree."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy.ext.asyncio import AsyncSession

from callingbox_server.domains.agents import repository
from callingbox_server.domains.agents.schemas import Agent


def render(rows: Sequence[asyncpg.Record]) -> list[Agent]:
    """Agents from view rows, in their order."""
    agents: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        agent = agents.get(row["id"])
        if agent is None:
            agent = agents[row["id"]] = {name: row[name] for name in repository.AGENT_FIELDS}
            for name in repository.JSON_FIELDS:
                if agent[name] is not None:
                    agent[name] = pydantic_core.from_json(agent[name])
            agent["numbers"] = []
        if row["number_id"] is not None:
            agent["numbers"].append(
                {name: row[f"number_{name}"] for name in repository.NUMBER_FIELDS}
            )
    return [Agent.model_validate(agent) for agent in agents.values()]


async def read(session: AsyncSession, org_id: uuid.UUID, agent_id: uuid.UUID) -> Agent | None:
    """The agent as stored now: in a transaction, as that transaction sees it."""
    rows = await repository.get_view(session, org_id, agent_id)
    return render(rows)[0] if rows else None
