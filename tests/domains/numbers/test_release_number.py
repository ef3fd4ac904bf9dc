"""DELETE /v1/numbers/{id}: release a number, detaching it from every agent."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.fixtures.numbers import phone
from tests.fixtures.tenants import Tenant


async def purchase(client: httpx.AsyncClient, phone_number: str) -> dict[str, Any]:
    r = await client.post("/v1/numbers/purchase", json={"phone_number": phone_number})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def create_agent(
    client: httpx.AsyncClient, agent_type: str, number_ids: list[str], **fields: Any
) -> dict[str, Any]:
    payload = {"name": f"{agent_type} agent", "type": agent_type, "number_ids": number_ids}
    r = await client.post("/v1/agents", json={**payload, **fields})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def get_json(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def not_found(r: httpx.Response, number_id: str) -> dict[str, str]:
    return {
        "error": f"number {number_id} not found",
        "code": "not_found",
        "request_id": r.headers["x-request-id"],
    }


class TestReleaseNumber:
    async def test_returns_the_released_number(self, tenant: Tenant, area_code: str) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        r = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        assert r.json() == {**number, "status": "released"}
        got = await get_json(tenant.client, f"/v1/numbers/{number['id']}")
        assert got == r.json()

    async def test_leaves_the_default_list(self, tenant: Tenant, area_code: str) -> None:
        kept = await purchase(tenant.client, phone(0, area_code))
        gone = await purchase(tenant.client, phone(1, area_code))
        r = await tenant.client.delete(f"/v1/numbers/{gone['id']}")
        assert r.status_code == 200, r.text
        assert await get_json(tenant.client, "/v1/numbers") == {"data": [kept], "has_more": False}
        assert await get_json(tenant.client, "/v1/numbers?status=released") == {
            "data": [{**gone, "status": "released"}],
            "has_more": False,
        }

    async def test_releasing_again_returns_it_unchanged(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        first = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert first.status_code == 200, first.text
        second = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert second.status_code == 200, second.text
        assert second.json() == first.json() == {**number, "status": "released"}
        assert await get_json(tenant.client, "/v1/numbers?status=released") == {
            "data": [first.json()],
            "has_more": False,
        }

    async def test_released_number_cannot_be_given_to_a_new_agent(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        await create_agent(tenant.client, "inbound", [number["id"]])
        await tenant.client.delete(f"/v1/numbers/{number['id']}")
        r = await tenant.client.post(
            "/v1/agents", json={"name": "x", "type": "inbound", "number_ids": [number["id"]]}
        )
        assert r.status_code == 404
        assert r.json() == not_found(r, number["id"])

    async def test_released_number_cannot_be_attached(self, tenant: Tenant, area_code: str) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        agent = await create_agent(tenant.client, "outbound", [])
        await tenant.client.delete(f"/v1/numbers/{number['id']}")
        r = await tenant.client.post(
            f"/v1/agents/{agent['id']}/numbers", json={"number_id": number["id"]}
        )
        assert r.status_code == 404
        assert r.json() == not_found(r, number["id"])

    async def test_can_be_bought_again_as_a_new_number(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        released = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        again = await purchase(tenant.client, phone(0, area_code))
        assert again["id"] != number["id"]
        assert again["purchased_at"] > number["purchased_at"]
        assert again == {
            **number,
            "id": again["id"],
            "purchased_at": again["purchased_at"],
        }
        assert await get_json(tenant.client, "/v1/numbers") == {
            "data": [again],
            "has_more": False,
        }
        assert await get_json(tenant.client, "/v1/numbers?status=released") == {
            "data": [released.json()],
            "has_more": False,
        }

    async def test_can_be_bought_by_another_org(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        r = await other_tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": phone(0, area_code)}
        )
        assert r.status_code == 409, r.text
        released = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert released.status_code == 200, released.text

        theirs = await purchase(other_tenant.client, phone(0, area_code))
        assert theirs["id"] != number["id"]
        assert theirs == {**number, "id": theirs["id"], "purchased_at": theirs["purchased_at"]}
        # The old record stays the first org's, released; the new one is invisible to it.
        assert await get_json(tenant.client, f"/v1/numbers/{number['id']}") == released.json()
        r = await tenant.client.get(f"/v1/numbers/{theirs['id']}")
        assert r.status_code == 404
        assert r.json() == not_found(r, theirs["id"])
        r = await other_tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.status_code == 404
        assert r.json() == not_found(r, number["id"])
        # Buying it back is refused while the other org holds it.
        r = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": phone(0, area_code)}
        )
        assert r.status_code == 409
        assert r.json() == {
            "error": f"phone number {phone(0, area_code)} is not available",
            "code": "number_unavailable",
            "request_id": r.headers["x-request-id"],
        }

    async def test_releasing_again_after_repurchase_keeps_the_old_record(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        first = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        theirs = await purchase(other_tenant.client, phone(0, area_code))
        again = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        assert await get_json(other_tenant.client, f"/v1/numbers/{theirs['id']}") == theirs

    async def test_another_orgs_number_is_not_found(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        theirs = await purchase(other_tenant.client, phone(0, area_code))
        agent = await create_agent(other_tenant.client, "inbound", [theirs["id"]])
        r = await tenant.client.delete(f"/v1/numbers/{theirs['id']}")
        assert r.status_code == 404
        assert r.json() == not_found(r, theirs["id"])
        assert await get_json(other_tenant.client, f"/v1/numbers/{theirs['id']}") == {
            **theirs,
            "inbound_agent_id": agent["id"],
        }
        assert await get_json(other_tenant.client, f"/v1/agents/{agent['id']}") == agent

    async def test_missing_number_is_not_found(self, tenant: Tenant) -> None:
        for number_id in (str(uuid.uuid4()), "abc"):
            r = await tenant.client.delete(f"/v1/numbers/{number_id}")
            assert r.status_code == 404, (number_id, r.text)
            assert r.json() == not_found(r, number_id)
