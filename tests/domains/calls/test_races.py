"""Races with real concurrent requests against a real server: exactly one side wins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.domains.calls.calls import destination
from tests.domains.calls.live import (
    COMPLETED_EVENTS,
    client,
    events_by_call,
    outbound_agent,
    wait_status,
    wait_terminal,
)
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.system
RING_SECONDS = 0.5
ROUNDS = 10


@pytest.fixture(scope="module")
def calls_server(database_url: str) -> Iterator[str]:
    settings = {
        "CALLINGBOX_SANDBOX_RING_SECONDS": str(RING_SECONDS),
        "CALLINGBOX_SANDBOX_TALK_SECONDS": "0.1",
    }
    with running_server(database_url, settings=settings) as base_url:
        yield base_url


class TestCancelAgainstAnswer:
    async def test_by_hand_exactly_one_wins(
        self, calls_server: str, live_key: str, database_url: str
    ) -> None:
        async with client(calls_server, live_key) as http:
            agent = await outbound_agent(http)
            ids = []
            for _ in range(ROUNDS):
                r = await http.post(
                    "/v1/calls", json={"agent_id": agent["id"], "to": destination("0009")}
                )
                assert r.status_code == 201, r.text
                call_id = r.json()["id"]
                ids.append(call_id)
                await wait_status(http, call_id, "ringing")  # where a 0009 call stops
                cancel, answer = await asyncio.gather(
                    http.post(f"/v1/calls/{call_id}/cancel"),
                    http.post(
                        f"/v1/test_helpers/calls/{call_id}/advance",
                        json={"status": "in_progress"},
                    ),
                )
                assert sorted([cancel.status_code, answer.status_code]) == [200, 409]
                final = (await http.get(f"/v1/calls/{call_id}")).json()
                if cancel.status_code == 200:
                    assert answer.json()["code"] == "invalid_transition"
                    assert final["status"] == "canceled"
                else:
                    assert cancel.json()["code"] == "call_not_cancelable"
                    assert final["status"] == "in_progress"
            events = await events_by_call(database_url, ids)
        for call_id in ids:
            assert events[call_id][:2] == ["call.queued", "call.ringing"]
            assert events[call_id][2:] in (["call.canceled"], ["call.answered"])

    async def test_against_the_runner_events_agree(
        self, calls_server: str, live_key: str, database_url: str
    ) -> None:
        """Cancels sent as the ring time ends: each call is canceled or answered, never both."""
        async with client(calls_server, live_key) as http:
            agent = await outbound_agent(http)
            created = await asyncio.gather(
                *(
                    http.post(
                        "/v1/calls", json={"agent_id": agent["id"], "to": destination("0123")}
                    )
                    for _ in range(20)
                )
            )
            ids = [r.json()["id"] for r in created]
            await asyncio.sleep(RING_SECONDS * 0.9)
            cancels = await asyncio.gather(*(http.post(f"/v1/calls/{i}/cancel") for i in ids))
            calls = await wait_terminal(http, ids, within=30)
            events = await events_by_call(database_url, ids)
        for call_id, cancel in zip(ids, cancels, strict=True):
            if cancel.status_code == 200:
                assert calls[call_id]["status"] == "canceled"
                assert events[call_id][-1] == "call.canceled"
                assert "call.answered" not in events[call_id]
            else:
                assert cancel.status_code == 409, cancel.text
                assert calls[call_id]["status"] == "completed"
                assert events[call_id] == COMPLETED_EVENTS


class TestConcurrentIdempotentDispatch:
    async def test_twenty_requests_one_call(
        self, calls_server: str, live_key: str, database_url: str
    ) -> None:
        async with client(calls_server, live_key) as http:
            agent = await outbound_agent(http)
            body = {"agent_id": agent["id"], "to": destination("0009")}
            headers = {"Idempotency-Key": "twenty-at-once"}
            responses = await asyncio.gather(
                *(http.post("/v1/calls", json=body, headers=headers) for _ in range(20))
            )
            listed = (await http.get("/v1/calls")).json()["data"]
        placed = {r.json()["id"] for r in responses if r.status_code == 201}
        others = [r for r in responses if r.status_code != 201]
        assert len(placed) == 1
        assert all(r.status_code == 409 for r in others), [r.text for r in others]
        assert all(r.json()["code"] == "idempotency_in_progress" for r in others)
        assert [call["id"] for call in listed] == list(placed)
        events = await events_by_call(database_url, placed)
        assert events[next(iter(placed))][0] == "call.queued"
        assert events[next(iter(placed))].count("call.queued") == 1
