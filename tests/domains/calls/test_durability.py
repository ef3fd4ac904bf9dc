"""Calls survive their processes: a server killed mid-call, two runners on one database."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.domains.calls.calls import destination
from tests.domains.calls.live import (
    COMPLETED_EVENTS,
    TERMINAL,
    client,
    events_by_call,
    outbound_agent,
    wait_status,
    wait_terminal,
)
from tests.fixtures import database
from tests.fixtures.keys import create_key_at
from tests.fixtures.servers import STOP_TIMEOUT, server_env, start_server

pytestmark = pytest.mark.system


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database no other server plays calls on (the session's live server would)."""
    with database.new_database(database.server_url(), "callingbox_calls") as url:
        yield url


QUEUED_RINGING = ["call.queued", "call.ringing"]
# Each outcome's events, exactly (section 6: once each, one terminal event).
PATHS = {
    "0123": COMPLETED_EVENTS,
    "0001": [*QUEUED_RINGING, "call.no_answer"],
    "0002": [*QUEUED_RINGING, "call.busy"],
    "0003": [*QUEUED_RINGING, "call.failed"],
    "0005": [*QUEUED_RINGING, "call.answered", "call.failed"],
    "0006": COMPLETED_EVENTS,
}
MOVE = re.compile(r"call ([0-9a-f-]{36}) of org [0-9a-f-]{36}: (\w+) -> (\w+)")


def start_worker(env: dict[str, str], cwd: Path, name: str) -> subprocess.Popen[bytes]:
    """A ``callingbox-server worker`` process, its output in ``<name>.log``."""
    with (cwd / f"{name}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "callingbox_server.cli", "worker"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


class TestServerKilledMidCall:
    async def test_every_call_ends_with_each_event_once(
        self, tmp_path: Path, own_database: str
    ) -> None:
        database_url = own_database
        key = await create_key_at(database_url)
        env = server_env(database_url, sandbox_ring_seconds="1.0", sandbox_talk_seconds="0.5")
        first = start_server(env, tmp_path, "first")
        first.wait_ready()
        try:
            async with client(first.base_url, key) as http:
                agent = await outbound_agent(http)
                created = await asyncio.gather(
                    *(
                        http.post(
                            "/v1/calls", json={"agent_id": agent["id"], "to": destination(four)}
                        )
                        for four in PATHS
                        for _ in range(5)
                    )
                )
                assert all(r.status_code == 201 for r in created), [r.text for r in created]
                ids = {r.json()["id"]: r.json()["to_number"][-4:] for r in created}
                # Killed once ringing has begun (on a loaded machine the first call may be
                # further on by the time it is seen; the others are not).
                await wait_status(http, next(iter(ids)), "ringing", "in_progress", *TERMINAL)
        finally:
            assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        second = start_server(env, tmp_path, "second")
        try:
            second.wait_ready()
            async with client(second.base_url, key) as http:
                calls = await wait_terminal(http, list(ids), within=60)
        finally:
            second.close()
        events = await events_by_call(database_url, ids)
        for call_id, four in ids.items():
            assert events[call_id] == PATHS[four], (call_id, four, calls[call_id]["status"])


class TestTwoRunners:
    async def test_no_step_runs_twice(self, tmp_path: Path, own_database: str) -> None:
        database_url = own_database
        key = await create_key_at(database_url)
        settings = {"sandbox_ring_seconds": "0.2", "sandbox_talk_seconds": "0"}
        api = start_server(
            server_env(database_url, serve_runs_worker="false", **settings), tmp_path, "api"
        )
        worker_env = server_env(database_url, log_level="info", **settings)
        workers = [start_worker(worker_env, tmp_path, name) for name in ("one", "two")]
        try:
            api.wait_ready()
            async with client(api.base_url, key) as http:
                agent = await outbound_agent(http)
                ids: list[str] = []
                for _ in range(5):
                    created = await asyncio.gather(
                        *(
                            http.post(
                                "/v1/calls",
                                json={"agent_id": agent["id"], "to": destination("0123")},
                            )
                            for _ in range(20)
                        )
                    )
                    assert all(r.status_code == 201 for r in created), [r.text for r in created]
                    ids += [r.json()["id"] for r in created]
                await wait_terminal(http, ids, within=60)
        finally:
            for process in workers:
                process.send_signal(signal.SIGTERM)
            for process in workers:
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT)
            api.close()
        moves = {
            name: [m.groups() for m in MOVE.finditer((tmp_path / f"{name}.log").read_text())]
            for name in ("one", "two")
        }
        ours = set(ids)
        done = Counter(
            (call_id, target)
            for name in moves
            for call_id, _, target in moves[name]
            if call_id in ours
        )
        assert set(done.values()) == {1}, [step for step, count in done.items() if count > 1]
        assert len(done) == 4 * len(ids)  # initiated, ringing, in_progress, completed
        assert all(moves[name] for name in moves), {name: len(m) for name, m in moves.items()}
        events = await events_by_call(database_url, ids)
        assert all(events[call_id] == COMPLETED_EVENTS for call_id in ids)
