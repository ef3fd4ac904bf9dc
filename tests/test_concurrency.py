"""Races against a real server process: the database decides, exactly one request wins."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from callingbox_server import keys
from tests.conftest import HASH_SECRET

ROUNDS = 5
CONTENDERS = 8
# These tests commit, so they buy in an area code no rolled-back test uses.
AREA_CODE = "989"


async def _new_key(engine: AsyncEngine) -> str:
    async with async_sessionmaker(engine)() as session, session.begin():
        created = await keys.create_key(
            session, org_name=f"race-{uuid.uuid4().hex}", hash_secret=HASH_SECRET.encode()
        )
    return created.secret


_offers = {"area_code": AREA_CODE, "limit": 50}


def _client(base_url: str, key: str) -> httpx.AsyncClient:
    # One connection per contender, so the requests really overlap on the server.
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=CONTENDERS * 2),
        timeout=30,
    )


async def _buy_some_number(client: httpx.AsyncClient) -> dict[str, Any]:
    offers = (await client.get("/v1/numbers/available", params=_offers)).json()["data"]
    for offer in random.sample(offers, len(offers)):
        response = await client.post(
            "/v1/numbers/purchase", json={"phone_number": offer["phone_number"]}
        )
        if response.status_code == 201:
            number: dict[str, Any] = response.json()
            return number
    raise AssertionError("no number could be bought")


class TestAttachRace:
    @pytest.mark.parametrize("round_", range(ROUNDS))
    async def test_one_inbound_agent_wins(
        self, live_server: str, engine: AsyncEngine, round_: int
    ) -> None:
        async with _client(live_server, await _new_key(engine)) as client:
            number = await _buy_some_number(client)
            agents = [
                (
                    await client.post("/v1/agents", json={"name": f"in {i}", "type": "inbound"})
                ).json()
                for i in range(CONTENDERS)
            ]
            responses = await asyncio.gather(
                *(
                    client.post(
                        f"/v1/agents/{agent['id']}/numbers", json={"number_id": number["id"]}
                    )
                    for agent in agents
                )
            )
            statuses = Counter(response.status_code for response in responses)
            assert statuses == {200: 1, 409: CONTENDERS - 1}
            winner = next(r.json()["id"] for r in responses if r.status_code == 200)
            for response in responses:
                if response.status_code == 409:
                    assert response.json()["code"] == "number_in_use"
                    assert winner in response.json()["error"]
            stored = (await client.get(f"/v1/numbers/{number['id']}")).json()
            assert stored["inbound_agent_id"] == winner


class TestPurchaseRace:
    @pytest.mark.parametrize("round_", range(ROUNDS))
    async def test_one_purchase_wins_across_orgs(
        self, live_server: str, engine: AsyncEngine, round_: int
    ) -> None:
        first, second = await _new_key(engine), await _new_key(engine)
        async with _client(live_server, first) as one, _client(live_server, second) as two:
            offers = (await one.get("/v1/numbers/available", params=_offers)).json()["data"]
            phone_number = random.choice(offers)["phone_number"]
            body = {"phone_number": phone_number}
            responses = await asyncio.gather(
                *(
                    (one if i % 2 else two).post("/v1/numbers/purchase", json=body)
                    for i in range(CONTENDERS)
                )
            )
            statuses = Counter(response.status_code for response in responses)
            assert statuses == {201: 1, 409: CONTENDERS - 1}
            assert {r.json()["code"] for r in responses if r.status_code == 409} == {
                "number_unavailable"
            }
            owned = [
                n["e164"]
                for client in (one, two)
                for n in (await client.get("/v1/numbers")).json()["data"]
            ]
            assert owned == [phone_number]


class TestBindingStorm:
    async def test_mixed_operations_keep_every_invariant(
        self, live_server: str, engine: AsyncEngine
    ) -> None:
        """Attach, detach, set-primary, archive and release at once: no 5xx, no deadlock, and
        afterwards every number answers for at most one inbound agent and every primary is
        attached."""
        rng = random.Random(1234)
        async with _client(live_server, await _new_key(engine)) as client:
            numbers = [await _buy_some_number(client) for _ in range(3)]
            agents = [
                (
                    await client.post(
                        "/v1/agents",
                        json={"name": f"agent {i}", "type": ("inbound", "outbound")[i % 2]},
                    )
                ).json()
                for i in range(6)
            ]

            async def operation() -> httpx.Response:
                agent = rng.choice(agents)["id"]
                number = rng.choice(numbers)["id"]
                kind = rng.random()
                if kind < 0.45:
                    return await client.post(
                        f"/v1/agents/{agent}/numbers",
                        json={"number_id": number, "set_as_primary": rng.random() < 0.5},
                    )
                if kind < 0.75:
                    return await client.delete(f"/v1/agents/{agent}/numbers/{number}")
                if kind < 0.9:
                    return await client.put(
                        f"/v1/agents/{agent}/primary-number", json={"number_id": number}
                    )
                if kind < 0.95:
                    return await client.delete(f"/v1/agents/{agent}")
                return await client.delete(f"/v1/numbers/{number}")

            for _ in range(10):
                responses = await asyncio.gather(*(operation() for _ in range(CONTENDERS * 2)))
                assert all(r.status_code < 500 for r in responses), [
                    (r.status_code, r.text) for r in responses if r.status_code >= 500
                ]
                assert {r.status_code for r in responses} <= {200, 400, 404, 409}

            listed = (
                await client.get("/v1/agents", params={"include_archived": "true", "limit": 100})
            ).json()["data"]
            inbound_per_number: Counter[str] = Counter()
            for agent in listed:
                attached = [n["id"] for n in agent["numbers"]]
                assert agent["primary_number_id"] in [*attached, None]
                if agent["archived_at"] is not None:
                    assert attached == []
                if attached and agent["primary_number_id"] is None:
                    raise AssertionError(f"agent {agent['id']} has numbers but no primary")
                if agent["type"] == "inbound":
                    inbound_per_number.update(attached)
                for number in agent["numbers"]:
                    assert number["status"] == "active"
            assert all(count == 1 for count in inbound_per_number.values())
