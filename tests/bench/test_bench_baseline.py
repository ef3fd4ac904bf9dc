"""The benchmark's baselines (raw asyncpg; and PostgreSQL writing the JSON) write byte-identical
JSON for the same objects.

The bench divides our requests/s by the baseline's; that ratio is honest only while both do the
same work and send the same bytes. Objects are made through a real server (real commits), then
read from it and from the baseline app, on the same database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bench import baseline, baseline_pg
from tests.fixtures.database import HASH_SECRET, asyncpg_dsn
from tests.fixtures.keys import create_key
from tests.fixtures.numbers import area_code

pytestmark = pytest.mark.system

TOOLS: list[dict[str, Any]] = [
    {
        "type": "http",
        "name": "lookup",
        "description": "Find the booking. Ünïcödé, “quotes”, emoji 📞 and a line\nbreak.",
        "policy": "read",
        "url": "https://api.example.com/bookings?x=1&y=/z",
        "parameters": {
            "type": "object",
            "properties": {"phone": {"type": "string", "pattern": "^\\+1[0-9]{10}$"}},
            "required": ["phone"],
        },
        "headers": {"X-Api-Key": "k</script>"},
        "timeout_ms": 5000,
    },
    {
        "type": "builtin",
        "name": "end_call",
        "description": "Hang up.",
        "policy": "confirm_first_write",
        "builtin": "end_call",
        "parameters": {"type": "object"},
        "config": {"delay": 0.5, "tiny": 1e-07, "big": 12345678901234567890, "none": None},
    },
]


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    created: dict[str, Any] = response.json()
    return created


async def _buy(client: httpx.AsyncClient, count: int) -> list[str]:
    # These tests commit, so they buy in an area code no other test uses.
    params = {"area_code": area_code(), "limit": 50}
    offers = await client.get("/v1/numbers/available", params=params)
    bought: list[str] = []
    for offer in offers.json()["data"]:
        response = await client.post(
            "/v1/numbers/purchase", json={"phone_number": offer["phone_number"]}
        )
        if response.status_code == 201:
            bought.append(response.json()["id"])
        if len(bought) == count:
            return bought
    raise AssertionError("not enough numbers could be bought")


@pytest.fixture(scope="module")
async def objects(live_server: str, engine: AsyncEngine) -> dict[str, Any]:
    """An org with agents of every shape: numbers shared and not, archived, empty."""
    key = (await create_key(async_sessionmaker(engine))).secret
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=30) as client:
        one, two, three = await _buy(client, 3)
        full = await _post(
            client,
            "/v1/agents",
            {
                "name": "Réception ✓",
                "type": "inbound",
                "persona": "Warm.\n\tPatient.",
                "instructions": "Say “hello”.",
                "voice": "alloy",
                "language": "es-419",
                "returns": {"confirmed": "boolean", "when": "string", "count": "number"},
                "tools": TOOLS,
                "webhook_url": "https://hooks.example.com/calls?a=1",
                "voicemail_action": "leave_message",
                "number_ids": [one, two],
                "primary_number_id": two,
            },
        )
        caller = await _post(client, "/v1/agents", {"name": "Caller", "type": "outbound"})
        await _post(client, f"/v1/agents/{caller['id']}/numbers", {"number_id": one})
        await _post(client, f"/v1/agents/{caller['id']}/numbers", {"number_id": three})
        second = await _post(
            client, "/v1/agents", {"name": "Caller 2", "type": "outbound", "number_ids": [one]}
        )
        empty = await _post(client, "/v1/agents", {"name": "Empty", "type": "inbound"})
        archived = await _post(client, "/v1/agents", {"name": "Gone", "type": "outbound"})
        response = await client.delete(f"/v1/agents/{archived['id']}")
        assert response.status_code == 200
        many = [
            await _post(client, "/v1/agents", {"name": f"Agent {i}", "type": "outbound"})
            for i in range(5)
        ]
    ids = [full["id"], caller["id"], second["id"], empty["id"], archived["id"]]
    return {
        "key": key,
        "ids": ids + [agent["id"] for agent in many],
        "live_server": live_server,
    }


@pytest.fixture(scope="module", params=[baseline, baseline_pg], ids=["python", "in_postgres"])
async def clients(
    request: pytest.FixtureRequest, objects: dict[str, Any], database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    module: Any = request.param
    app = module.create_app(asyncpg_dsn(database_url), HASH_SECRET.encode(), pool_size=2)
    headers = {"Authorization": f"Bearer {objects['key']}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(base_url=objects["live_server"], headers=headers, timeout=30) as ours,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://baseline", headers=headers
        ) as theirs,
    ):
        yield ours, theirs


async def _both(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str, **kwargs: Any
) -> tuple[httpx.Response, httpx.Response]:
    ours, theirs = clients
    return await ours.get(path, **kwargs), await theirs.get(path, **kwargs)


class TestSameBytes:
    async def test_every_agent(
        self, objects: dict[str, Any], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        for agent_id in objects["ids"]:
            ours, theirs = await _both(clients, f"/v1/agents/{agent_id}")
            assert ours.status_code == theirs.status_code == 200
            assert theirs.content == ours.content

    async def test_numbers_shared_between_agents_show_every_holder(
        self, objects: dict[str, Any], clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
    ) -> None:
        ours, theirs = await _both(clients, f"/v1/agents/{objects['ids'][0]}")
        numbers = ours.json()["numbers"]
        assert numbers[0]["inbound_agent_id"] == objects["ids"][0]
        assert numbers[0]["outbound_agent_ids"] == objects["ids"][1:3]
        assert theirs.content == ours.content

    @pytest.mark.parametrize("limit", [1, 3, 20, 100])
    async def test_every_page(
        self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient], limit: int
    ) -> None:
        params: dict[str, Any] = {"limit": limit}
        pages = 0
        while True:
            ours, theirs = await _both(clients, "/v1/agents", params=params)
            assert ours.status_code == theirs.status_code == 200
            assert theirs.content == ours.content
            pages += 1
            body = ours.json()
            if not body["has_more"]:
                break
            params["starting_after"] = body["data"][-1]["id"]
        assert pages == -(-9 // limit)  # nine live agents, the archived one left out

    async def test_default_page(self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        ours, theirs = await _both(clients, "/v1/agents")
        assert theirs.content == ours.content


class TestSameChecks:
    """The baseline's answers cost the same checks: refused keys and other orgs' agents."""

    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer nope", "Basic sk_live_" + "a" * 40, "Bearer sk_live_" + "a" * 40],
    )
    async def test_refused_keys(
        self,
        objects: dict[str, Any],
        clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
        authorization: str | None,
    ) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        for client in clients:
            request = client.build_request("GET", f"/v1/agents/{objects['ids'][0]}")
            if authorization is None:
                del request.headers["Authorization"]
            else:
                request.headers.update(headers)
            response = await client.send(request)
            assert response.status_code == 401
            assert response.json()["code"] == "unauthorized"

    async def test_other_orgs_agent_is_not_found(
        self,
        engine: AsyncEngine,
        objects: dict[str, Any],
        clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    ) -> None:
        stranger = {
            "Authorization": f"Bearer {(await create_key(async_sessionmaker(engine))).secret}"
        }
        path = f"/v1/agents/{objects['ids'][0]}"
        ours, theirs = await _both(clients, path, headers=stranger)
        assert ours.status_code == theirs.status_code == 404
        assert theirs.json()["error"] == ours.json()["error"]
