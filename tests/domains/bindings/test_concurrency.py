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

from tests.fixtures.keys import create_key
from tests.fixtures.numbers import area_code

ROUNDS = 50
CONTENDERS = 8

pytestmark = pytest.mark.system


@pytest.fixture(scope="class")
def rounds_area_code() -> str:
    """Where a class's rounds buy: they commit, so in an area code no other test uses (the
    sandbox offers 100 numbers per area code, each round buys one or two)."""
    return area_code()


async def _new_key(engine: AsyncEngine) -> str:
    return (await create_key(async_sessionmaker(engine))).secret


def _offers(area_code: str) -> dict[str, str | int]:
    return {"area_code": area_code, "limit": 50}


def _client(base_url: str, key: str) -> httpx.AsyncClient:
    # One connection per contender, so the requests really overlap on the server.
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=CONTENDERS * 2),
        timeout=30,
    )


async def _buy_some_number(client: httpx.AsyncClient, area_code: str) -> dict[str, Any]:
    offers = (await client.get("/v1/numbers/available", params=_offers(area_code))).json()["data"]
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
        self, live_server: str, engine: AsyncEngine, rounds_area_code: str, round_: int
    ) -> None:
        async with _client(live_server, await _new_key(engine)) as client:
            number = await _buy_some_number(client, rounds_area_code)
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
        self, live_server: str, engine: AsyncEngine, rounds_area_code: str, round_: int
    ) -> None:
        first, second = await _new_key(engine), await _new_key(engine)
        async with _client(live_server, first) as one, _client(live_server, second) as two:
            offers = (
                await one.get("/v1/numbers/available", params=_offers(rounds_area_code))
            ).json()["data"]
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
        self, live_server: str, engine: AsyncEngine, rounds_area_code: str
    ) -> None:
        """Attach, detach, set-primary, archive and release at once: no 5xx, no deadlock, and
        afterwards every number answers for at most one inbound agent and every primary is
        attached."""
        rng = random.Random(1234)
        async with _client(live_server, await _new_key(engine)) as client:
            numbers = [await _buy_some_number(client, rounds_area_code) for _ in range(3)]
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


class TestIdempotentRetries:
    """Twenty identical POSTs with one Idempotency-Key at once: the work happens once."""

    async def _storm(
        self,
        client: httpx.AsyncClient,
        path: str,
        body: dict[str, Any],
        different: dict[str, Any],
    ) -> list[httpx.Response]:
        headers = {"Idempotency-Key": f"storm-{uuid.uuid4()}"}
        responses = await asyncio.gather(
            *(client.post(path, json=body, headers=headers) for _ in range(20))
        )
        statuses = Counter(response.status_code for response in responses)
        assert set(statuses) <= {200, 201, 409}, [r.text for r in responses]
        done = [r for r in responses if r.status_code != 409]
        assert done, "every request was told the first one was in progress"
        assert len({r.content for r in done}) == 1, "replays must be byte-identical"
        assert sum("idempotent-replayed" not in r.headers for r in done) <= 1
        for response in responses:
            if response.status_code == 409:
                assert response.json()["code"] == "idempotency_in_progress"
        # Once the first request is over, the key replays it to everybody.
        retry = await client.post(path, json=body, headers=headers)
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.content == done[0].content
        other = await client.post(path, json=different, headers=headers)
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency_key_reused"
        return responses

    @pytest.mark.parametrize("round_", range(5))
    async def test_create_agent_happens_once(
        self, live_server: str, engine: AsyncEngine, round_: int
    ) -> None:
        async with _client(live_server, await _new_key(engine)) as client:
            await self._storm(
                client,
                "/v1/agents",
                {"name": "Once", "type": "inbound"},
                {"name": "Twice", "type": "inbound"},
            )
            listed = (await client.get("/v1/agents")).json()["data"]
            assert len(listed) == 1

    @pytest.mark.parametrize("round_", range(5))
    async def test_purchase_happens_once(
        self, live_server: str, engine: AsyncEngine, rounds_area_code: str, round_: int
    ) -> None:
        async with _client(live_server, await _new_key(engine)) as client:
            params = _offers(rounds_area_code)
            offers = (await client.get("/v1/numbers/available", params=params)).json()["data"]
            phone_number, another = (offer["phone_number"] for offer in random.sample(offers, 2))
            await self._storm(
                client,
                "/v1/numbers/purchase",
                {"phone_number": phone_number},
                {"phone_number": another},
            )
            listed = (await client.get("/v1/numbers")).json()["data"]
            assert [number["e164"] for number in listed] == [phone_number]


class TestLostUpdate:
    @pytest.mark.parametrize("round_", range(10))
    async def test_two_edits_from_one_read_one_wins_one_is_412(
        self, live_server: str, engine: AsyncEngine, round_: int
    ) -> None:
        async with _client(live_server, await _new_key(engine)) as client:
            created = await client.post("/v1/agents", json={"name": "Shared", "type": "inbound"})
            path = f"/v1/agents/{created.json()['id']}"
            read = await client.get(path)
            headers = {"If-Match": read.headers["etag"]}
            responses = await asyncio.gather(
                client.patch(path, json={"instructions": "Alice's edit"}, headers=headers),
                client.patch(path, json={"instructions": "Bob's edit"}, headers=headers),
            )
            assert sorted(r.status_code for r in responses) == [200, 412]
            winner = next(r for r in responses if r.status_code == 200)
            loser = next(r for r in responses if r.status_code == 412)
            assert loser.json()["code"] == "precondition_failed"
            assert (await client.get(path)).content == winner.content
