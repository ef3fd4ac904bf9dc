"""Keyset pagination, the same on every list endpoint: /v1/agents and /v1/numbers."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.fixtures import numbers
from tests.fixtures.tenants import Tenant

Item = dict[str, Any]


@dataclass(frozen=True)
class Collection:
    """One list endpoint and a way to add an item to it."""

    path: str
    noun: str
    make: Callable[[httpx.AsyncClient], Awaitable[Item]]
    # Gives every item of an org the same sort timestamp, to exercise the tie-break on id.
    same_time_sql: str

    async def create(self, client: httpx.AsyncClient, count: int = 1) -> list[Item]:
        return [await self.make(client) for _ in range(count)]


async def _create_agent(client: httpx.AsyncClient) -> Item:
    r = await client.post("/v1/agents", json={"name": "paged", "type": "outbound"})
    assert r.status_code == 201, r.text
    body: Item = r.json()
    return body


@functools.cache
def _area_code() -> str:
    """Where this module buys: each test's purchases are rolled back, so one will do."""
    return numbers.area_code()


async def _purchase_number(client: httpx.AsyncClient) -> Item:
    params = {"area_code": _area_code(), "limit": 1}
    offered = await client.get("/v1/numbers/available", params=params)
    assert offered.status_code == 200, offered.text
    phone_number = offered.json()["data"][0]["phone_number"]
    r = await client.post("/v1/numbers/purchase", json={"phone_number": phone_number})
    assert r.status_code == 201, r.text
    body: Item = r.json()
    return body


AGENTS = Collection(
    "/v1/agents",
    "agent",
    _create_agent,
    "UPDATE agents SET created_at = now() WHERE org_id = :org",
)
NUMBERS = Collection(
    "/v1/numbers",
    "number",
    _purchase_number,
    "UPDATE numbers SET purchased_at = now() WHERE org_id = :org",
)


@pytest.fixture(params=[AGENTS, NUMBERS], ids=["agents", "numbers"])
def collection(request: pytest.FixtureRequest) -> Collection:
    chosen: Collection = request.param
    return chosen


async def page(client: httpx.AsyncClient, path: str, **params: Any) -> Item:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    body: Item = r.json()
    assert set(body) == {"data", "has_more"}
    return body


def newest_first(items: list[Item]) -> list[Item]:
    return list(reversed(items))


def bad_request(r: httpx.Response, message: str) -> dict[str, str]:
    return {"error": message, "code": "invalid_request", "request_id": r.headers["x-request-id"]}


class TestPageSize:
    async def test_default_limit_is_twenty(self, tenant: Tenant, collection: Collection) -> None:
        items = newest_first(await collection.create(tenant.client, 25))
        assert await page(tenant.client, collection.path) == {
            "data": items[:20],
            "has_more": True,
        }

    async def test_has_more_is_false_on_an_exact_fit(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = newest_first(await collection.create(tenant.client, 3))
        assert await page(tenant.client, collection.path, limit=3) == {
            "data": items,
            "has_more": False,
        }
        assert await page(tenant.client, collection.path, limit=2) == {
            "data": items[:2],
            "has_more": True,
        }

    async def test_limit_bounds_are_inclusive(self, tenant: Tenant, collection: Collection) -> None:
        items = newest_first(await collection.create(tenant.client, 2))
        assert await page(tenant.client, collection.path, limit=1) == {
            "data": items[:1],
            "has_more": True,
        }
        assert await page(tenant.client, collection.path, limit=100) == {
            "data": items,
            "has_more": False,
        }

    async def test_empty_collection(self, tenant: Tenant, collection: Collection) -> None:
        assert await page(tenant.client, collection.path) == {"data": [], "has_more": False}

    @pytest.mark.parametrize(
        ("limit", "message"),
        [
            ("0", "must be at least 1"),
            ("-1", "must be at least 1"),
            ("101", "must be at most 100"),
            ("abc", "must be a whole number"),
            ("1.5", "must be a whole number"),
        ],
    )
    async def test_limit_out_of_bounds_is_rejected(
        self, tenant: Tenant, collection: Collection, limit: str, message: str
    ) -> None:
        r = await tenant.client.get(collection.path, params={"limit": limit})
        assert r.status_code == 400, r.text
        assert r.json() == bad_request(r, f"invalid query parameter limit: {message}")


class TestRepeatedParameters:
    @pytest.mark.parametrize("name", ["limit", "starting_after"])
    async def test_a_parameter_given_twice_is_refused(
        self, tenant: Tenant, collection: Collection, name: str
    ) -> None:
        items = await collection.create(tenant.client, 2)
        values = {"limit": ["1", "2"], "starting_after": [items[0]["id"], items[1]["id"]]}[name]

        r = await tenant.client.get(collection.path, params=[(name, v) for v in values])

        assert r.status_code == 400
        assert r.json() == bad_request(r, f"query parameter {name} is given more than once")


class TestWalkForward:
    async def test_visits_every_item_once_newest_first(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = newest_first(await collection.create(tenant.client, 25))
        seen: list[Item] = []
        pages: list[int] = []
        params: dict[str, Any] = {"limit": 7}
        while True:
            body = await page(tenant.client, collection.path, **params)
            seen.extend(body["data"])
            pages.append(len(body["data"]))
            if not body["has_more"]:
                break
            params["starting_after"] = body["data"][-1]["id"]
        assert seen == items
        assert pages == [7, 7, 7, 4]

    async def test_after_the_oldest_item_is_an_empty_page(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = await collection.create(tenant.client, 2)
        assert await page(tenant.client, collection.path, starting_after=items[0]["id"]) == {
            "data": [],
            "has_more": False,
        }
        assert await page(tenant.client, collection.path, starting_after=items[1]["id"]) == {
            "data": [items[0]],
            "has_more": False,
        }

    async def test_stable_under_concurrent_inserts(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        original = newest_first(await collection.create(tenant.client, 25))
        seen: list[Item] = []
        params: dict[str, Any] = {"limit": 10}
        while True:
            body = await page(tenant.client, collection.path, **params)
            seen.extend(body["data"])
            if not body["has_more"]:
                break
            params["starting_after"] = body["data"][-1]["id"]
            # New items arrive between page fetches; they are newer than every cursor.
            await collection.create(tenant.client, 3)
        assert seen == original
        total = await page(tenant.client, collection.path, limit=100)
        assert len(total["data"]) == 31
        assert total["data"][6:] == original

    async def test_ties_on_created_at_are_broken_by_id(
        self,
        tenant: Tenant,
        collection: Collection,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        items = await collection.create(tenant.client, 6)
        async with sessionmaker() as session:
            # Every item shares one timestamp: only the id orders them.
            await session.execute(text(collection.same_time_sql), {"org": tenant.org_id})
            await session.commit()
        ids = sorted((item["id"] for item in items), key=uuid.UUID, reverse=True)
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 4}
        while True:
            body = await page(tenant.client, collection.path, **params)
            seen.extend(item["id"] for item in body["data"])
            if not body["has_more"]:
                break
            params["starting_after"] = body["data"][-1]["id"]
        assert seen == ids
        backward: list[str] = []
        params = {"limit": 4, "ending_before": ids[-1]}
        while True:
            body = await page(tenant.client, collection.path, **params)
            backward = [item["id"] for item in body["data"]] + backward
            if not body["has_more"]:
                break
            params["ending_before"] = body["data"][0]["id"]
        assert backward == ids[:-1]


class TestWalkBackward:
    async def test_pages_are_newest_first_and_has_more_means_newer_items(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = newest_first(await collection.create(tenant.client, 25))
        oldest = items[-1]
        body = await page(tenant.client, collection.path, limit=10, ending_before=oldest["id"])
        assert body == {"data": items[14:24], "has_more": True}
        body = await page(tenant.client, collection.path, limit=10, ending_before=items[14]["id"])
        assert body == {"data": items[4:14], "has_more": True}
        body = await page(tenant.client, collection.path, limit=10, ending_before=items[4]["id"])
        assert body == {"data": items[0:4], "has_more": False}

    async def test_visits_every_item_once(self, tenant: Tenant, collection: Collection) -> None:
        items = newest_first(await collection.create(tenant.client, 25))
        seen: list[Item] = []
        params: dict[str, Any] = {"limit": 6, "ending_before": items[-1]["id"]}
        while True:
            body = await page(tenant.client, collection.path, **params)
            assert body["data"] == sorted(body["data"], key=lambda item: items.index(item)), (
                "each page is newest first"
            )
            seen = body["data"] + seen
            if not body["has_more"]:
                break
            params["ending_before"] = body["data"][0]["id"]
        assert seen == items[:-1]

    async def test_before_the_newest_item_is_an_empty_page(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = await collection.create(tenant.client, 2)
        assert await page(tenant.client, collection.path, ending_before=items[1]["id"]) == {
            "data": [],
            "has_more": False,
        }

    async def test_forward_then_back_returns_to_the_first_page(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = newest_first(await collection.create(tenant.client, 12))
        first = await page(tenant.client, collection.path, limit=5)
        second = await page(
            tenant.client, collection.path, limit=5, starting_after=first["data"][-1]["id"]
        )
        assert second == {"data": items[5:10], "has_more": True}
        back = await page(
            tenant.client, collection.path, limit=5, ending_before=second["data"][0]["id"]
        )
        assert back == {"data": first["data"], "has_more": False}


class TestCursors:
    async def test_both_cursors_together_are_rejected(
        self, tenant: Tenant, collection: Collection
    ) -> None:
        items = await collection.create(tenant.client, 3)
        r = await tenant.client.get(
            collection.path,
            params={"starting_after": items[2]["id"], "ending_before": items[0]["id"]},
        )
        assert r.status_code == 400
        assert r.json() == bad_request(
            r, "starting_after and ending_before cannot be used together"
        )

    @pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
    async def test_cursor_that_is_not_a_uuid(
        self, tenant: Tenant, collection: Collection, cursor: str
    ) -> None:
        for raw in ("abc", "1", "not-a-uuid"):
            r = await tenant.client.get(collection.path, params={cursor: raw})
            assert r.status_code == 400, (raw, r.text)
            assert r.json() == bad_request(
                r,
                f"invalid query parameter {cursor}: must be an id (a UUID)",
            )

    @pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
    async def test_unknown_cursor(
        self, tenant: Tenant, collection: Collection, cursor: str
    ) -> None:
        await collection.create(tenant.client, 1)
        unknown = str(uuid.uuid4())
        r = await tenant.client.get(collection.path, params={cursor: unknown})
        assert r.status_code == 400
        assert r.json() == bad_request(
            r, f"invalid query parameter {cursor}: no such {collection.noun} {unknown}"
        )

    @pytest.mark.parametrize("cursor", ["starting_after", "ending_before"])
    async def test_another_orgs_item_is_not_a_cursor(
        self, tenant: Tenant, other_tenant: Tenant, collection: Collection, cursor: str
    ) -> None:
        await collection.create(tenant.client, 2)
        (theirs,) = await collection.create(other_tenant.client, 1)
        r = await tenant.client.get(collection.path, params={cursor: theirs["id"]})
        assert r.status_code == 400
        assert r.json() == bad_request(
            r, f"invalid query parameter {cursor}: no such {collection.noun} {theirs['id']}"
        )

    async def test_item_of_the_other_collection_is_not_a_cursor(self, tenant: Tenant) -> None:
        (agent,) = await AGENTS.create(tenant.client, 1)
        (number,) = await NUMBERS.create(tenant.client, 1)
        r = await tenant.client.get("/v1/agents", params={"starting_after": number["id"]})
        assert r.status_code == 400
        assert r.json() == bad_request(
            r, f"invalid query parameter starting_after: no such agent {number['id']}"
        )
        r = await tenant.client.get("/v1/numbers", params={"ending_before": agent["id"]})
        assert r.status_code == 400
        assert r.json() == bad_request(
            r, f"invalid query parameter ending_before: no such number {agent['id']}"
        )
