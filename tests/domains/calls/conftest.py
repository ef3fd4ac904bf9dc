"""Calls in-process: the sandbox with ring and talk times of 0, and the runner played by hand on
the test's own connection (inside its rolled-back transaction), so a test decides when calls
move and sees every step's rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from callingbox_server.domains.calls.carriers.sandbox import SandboxCarrier
from callingbox_server.domains.calls.tasks import CallSteps

MAX_ROUNDS = 50


@pytest.fixture(autouse=True)
def carrier(app: FastAPI) -> Iterator[SandboxCarrier]:
    """The app's carrier for this test: the sandbox, playing calls out with no delays."""
    sandbox = SandboxCarrier(ring_seconds=0.0, talk_seconds=0.0)
    previous = app.state.carrier
    app.state.carrier = sandbox
    yield sandbox
    app.state.carrier = previous


class Runner:
    """The calls runner, on the test's connection."""

    def __init__(self, connection: AsyncConnection, carrier: SandboxCarrier) -> None:
        self.connection = connection
        self.steps = CallSteps(carrier)

    async def driver(self) -> asyncpg.Connection[Any]:
        raw = await self.connection.get_raw_connection()
        driver: asyncpg.Connection[Any] | None = raw.driver_connection
        assert driver is not None
        return driver

    async def play(self) -> int:
        """Run rounds until nothing is due now; returns how many rounds did work."""
        driver = await self.driver()
        for rounds in range(MAX_ROUNDS):
            if await self.steps.run_batch(driver) != 0.0:
                return rounds
        pytest.fail(f"calls still had due steps after {MAX_ROUNDS} rounds")

    async def events(self, call_id: str) -> list[str]:
        """The call's event types, in the order they were written."""
        driver = await self.driver()
        rows = await driver.fetch(
            "SELECT type FROM events WHERE call_id = $1 ORDER BY created_at, type", call_id
        )
        return [row["type"] for row in rows]

    async def event_data(self, call_id: str) -> list[dict[str, Any]]:
        driver = await self.driver()
        rows = await driver.fetch(
            "SELECT data::text AS data FROM events WHERE call_id = $1 ORDER BY created_at", call_id
        )
        import json

        return [json.loads(row["data"]) for row in rows]


@pytest.fixture
def runner(connection: AsyncConnection, carrier: SandboxCarrier) -> Runner:
    return Runner(connection, carrier)
