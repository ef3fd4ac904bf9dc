"""GET /v1/numbers and GET /v1/numbers/{id}."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.fixtures.numbers import phone, toll_free_number
from tests.fixtures.tenants import Tenant


async def purchase(client: httpx.AsyncClient, phone_number: str) -> dict[str, Any]:
    r = await client.post("/v1/numbers/purchase", json={"phone_number": phone_number})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def release(client: httpx.AsyncClient, number_id: str) -> dict[str, Any]:
    r = await client.delete(f"/v1/numbers/{number_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def create_agent(
    client: httpx.AsyncClient, agent_type: str, number_ids: list[str] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": f"{agent_type} agent", "type": agent_type}
    if number_ids is not None:
        payload["number_ids"] = number_ids
    r = await client.post("/v1/agents", json=payload)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def attach(client: httpx.AsyncClient, agent_id: str, number_id: str) -> None:
    r = await client.post(f"/v1/agents/{agent_id}/numbers", json={"number_id": number_id})
    assert r.status_code == 200, r.text


def not_found(r: httpx.Response, number_id: str) -> dict[str, str]:
    return {
        "error": f"number {number_id} not found",
        "code": "not_found",
        "request_id": r.headers["x-request-id"],
    }


class TestListNumbers:
    async def test_empty(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers")
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [], "has_more": False}

    async def test_newest_first(self, tenant: Tenant, area_code: str) -> None:
        first = await purchase(tenant.client, phone(0, area_code))
        second = await purchase(tenant.client, toll_free_number())
        third = await purchase(tenant.client, phone(1, area_code))
        r = await tenant.client.get("/v1/numbers")
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [third, second, first], "has_more": False}

    async def test_default_lists_only_active_numbers(self, tenant: Tenant, area_code: str) -> None:
        kept = await purchase(tenant.client, phone(0, area_code))
        gone = await purchase(tenant.client, phone(1, area_code))
        await release(tenant.client, gone["id"])
        r = await tenant.client.get("/v1/numbers")
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [kept], "has_more": False}
        explicit = await tenant.client.get("/v1/numbers", params={"status": "active"})
        assert explicit.status_code == 200, explicit.text
        assert explicit.json() == r.json()

    async def test_status_released_lists_released_numbers(
        self, tenant: Tenant, area_code: str
    ) -> None:
        await purchase(tenant.client, phone(0, area_code))
        first = await purchase(tenant.client, phone(1, area_code))
        second = await purchase(tenant.client, phone(2, area_code))
        released_first = await release(tenant.client, first["id"])
        released_second = await release(tenant.client, second["id"])
        r = await tenant.client.get("/v1/numbers", params={"status": "released"})
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [released_second, released_first], "has_more": False}
        assert [n["status"] for n in r.json()["data"]] == ["released", "released"]

    async def test_bad_status_is_rejected(self, tenant: Tenant) -> None:
        for status in ("all", "ACTIVE", ""):
            r = await tenant.client.get("/v1/numbers", params={"status": status})
            assert r.status_code == 400, (status, r.text)
            assert r.json() == {
                "error": "invalid query parameter status: must be active or released",
                "code": "invalid_request",
                "request_id": r.headers["x-request-id"],
            }

    async def test_unknown_query_parameter_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers", params={"number_type": "local"})
        assert r.status_code == 400
        assert r.json() == {
            "error": "unknown query parameter: number_type",
            "code": "invalid_request",
            "request_id": r.headers["x-request-id"],
        }

    async def test_other_orgs_numbers_are_not_listed(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        mine = await purchase(tenant.client, phone(0, area_code))
        theirs = await purchase(other_tenant.client, phone(1, area_code))
        gone = await purchase(other_tenant.client, phone(2, area_code))
        await release(other_tenant.client, gone["id"])
        assert (await tenant.client.get("/v1/numbers")).json() == {
            "data": [mine],
            "has_more": False,
        }
        released = await tenant.client.get("/v1/numbers", params={"status": "released"})
        assert released.json() == {"data": [], "has_more": False}
        assert (await other_tenant.client.get("/v1/numbers")).json() == {
            "data": [theirs],
            "has_more": False,
        }

    async def test_agent_bindings_are_shown(self, tenant: Tenant, area_code: str) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        inbound = await create_agent(tenant.client, "inbound", [number["id"]])
        first_outbound = await create_agent(tenant.client, "outbound")
        second_outbound = await create_agent(tenant.client, "outbound")
        await attach(tenant.client, second_outbound["id"], number["id"])
        await attach(tenant.client, first_outbound["id"], number["id"])
        r = await tenant.client.get("/v1/numbers")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "data": [
                {
                    **number,
                    "inbound_agent_id": inbound["id"],
                    "outbound_agent_ids": [second_outbound["id"], first_outbound["id"]],
                }
            ],
            "has_more": False,
        }


class TestGetNumber:
    async def test_active_number(self, tenant: Tenant, area_code: str) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        r = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.status_code == 200, r.text
        assert r.json() == number

    async def test_released_number(self, tenant: Tenant, area_code: str) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        released = await release(tenant.client, number["id"])
        r = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.status_code == 200, r.text
        assert r.json() == released
        assert r.json() == {**number, "status": "released"}

    async def test_uppercase_uuid_names_the_same_number(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        r = await tenant.client.get(f"/v1/numbers/{number['id'].upper()}")
        assert r.status_code == 200, r.text
        assert r.json() == number

    async def test_missing_and_foreign_numbers_look_the_same(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        theirs = await purchase(other_tenant.client, phone(0, area_code))
        for number_id in (theirs["id"], str(uuid.uuid4())):
            r = await tenant.client.get(f"/v1/numbers/{number_id}")
            assert r.status_code == 404, (number_id, r.text)
            assert r.json() == not_found(r, number_id)

    async def test_id_that_is_not_a_uuid_is_not_found(self, tenant: Tenant) -> None:
        for number_id in ("abc", "123", "not-a-uuid"):
            r = await tenant.client.get(f"/v1/numbers/{number_id}")
            assert r.status_code == 404, (number_id, r.text)
            assert r.json() == not_found(r, number_id)

    async def test_inbound_and_outbound_agents_in_attach_order(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        other = await purchase(tenant.client, phone(1, area_code))
        outbound = [await create_agent(tenant.client, "outbound") for _ in range(3)]
        await attach(tenant.client, outbound[2]["id"], number["id"])
        await attach(tenant.client, outbound[0]["id"], other["id"])
        await attach(tenant.client, outbound[0]["id"], number["id"])
        await attach(tenant.client, outbound[1]["id"], number["id"])
        inbound = await create_agent(tenant.client, "inbound")
        await attach(tenant.client, inbound["id"], number["id"])

        r = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.status_code == 200, r.text
        assert r.json() == {
            **number,
            "inbound_agent_id": inbound["id"],
            "outbound_agent_ids": [outbound[2]["id"], outbound[0]["id"], outbound[1]["id"]],
        }
        r = await tenant.client.get(f"/v1/numbers/{other['id']}")
        assert r.json() == {
            **other,
            "inbound_agent_id": None,
            "outbound_agent_ids": [outbound[0]["id"]],
        }

    async def test_detaching_removes_the_binding(self, tenant: Tenant, area_code: str) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        inbound = await create_agent(tenant.client, "inbound", [number["id"]])
        outbound = await create_agent(tenant.client, "outbound", [number["id"]])
        for agent in (inbound, outbound):
            r = await tenant.client.delete(f"/v1/agents/{agent['id']}/numbers/{number['id']}")
            assert r.status_code == 200, r.text
        r = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.json() == number

    async def test_archiving_an_agent_frees_the_number(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        inbound = await create_agent(tenant.client, "inbound", [number["id"]])
        outbound = await create_agent(tenant.client, "outbound", [number["id"]])
        r = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.json() == {
            **number,
            "inbound_agent_id": inbound["id"],
            "outbound_agent_ids": [outbound["id"]],
        }
        archived = await tenant.client.delete(f"/v1/agents/{inbound['id']}")
        assert archived.status_code == 200, archived.text
        r = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert r.json() == {**number, "outbound_agent_ids": [outbound["id"]]}
