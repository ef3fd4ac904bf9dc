"""POST /v1/numbers/purchase."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.fixtures.numbers import phone, toll_free_number
from tests.fixtures.tenants import Tenant

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def bad_request(r: httpx.Response, message: str) -> dict[str, str]:
    return {"error": message, "code": "invalid_request", "request_id": r.headers["x-request-id"]}


def unavailable(r: httpx.Response, phone_number: str) -> dict[str, str]:
    return {
        "error": f"phone number {phone_number} is not available",
        "code": "number_unavailable",
        "request_id": r.headers["x-request-id"],
    }


async def purchase(client: httpx.AsyncClient, phone_number: str) -> dict[str, Any]:
    r = await client.post("/v1/numbers/purchase", json={"phone_number": phone_number})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def everything(client: httpx.AsyncClient) -> dict[str, Any]:
    active = await client.get("/v1/numbers", params={"limit": 100})
    released = await client.get("/v1/numbers", params={"limit": 100, "status": "released"})
    assert active.status_code == released.status_code == 200
    return {"active": active.json(), "released": released.json()}


class TestPurchaseNumber:
    async def test_local_number(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": phone(42, area_code)}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert uuid.UUID(body["id"]).version == 4
        assert TIMESTAMP.match(body["purchased_at"]), body["purchased_at"]
        assert body == {
            "id": body["id"],
            "e164": phone(42, area_code),
            "friendly_name": f"({area_code}) 555-0142",
            "country_code": "US",
            "number_type": "local",
            "status": "active",
            "monthly_cost_cents": 100,
            "purchased_at": body["purchased_at"],
            "inbound_agent_id": None,
            "outbound_agent_ids": [],
        }

    async def test_toll_free_number(self, tenant: Tenant) -> None:
        toll_free = toll_free_number()
        r = await tenant.client.post("/v1/numbers/purchase", json={"phone_number": toll_free})
        assert r.status_code == 201, r.text
        body = r.json()
        assert TIMESTAMP.match(body["purchased_at"]), body["purchased_at"]
        assert body == {
            "id": body["id"],
            "e164": toll_free,
            "friendly_name": f"({toll_free[2:5]}) 555-{toll_free[-4:]}",
            "country_code": "US",
            "number_type": "toll_free",
            "status": "active",
            "monthly_cost_cents": 200,
            "purchased_at": body["purchased_at"],
            "inbound_agent_id": None,
            "outbound_agent_ids": [],
        }

    async def test_purchased_number_is_listed_and_retrievable(
        self, tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        got = await tenant.client.get(f"/v1/numbers/{number['id']}")
        assert got.status_code == 200, got.text
        assert got.json() == number
        listed = await tenant.client.get("/v1/numbers")
        assert listed.json() == {"data": [number], "has_more": False}

    async def test_number_of_this_org_is_unavailable(self, tenant: Tenant, area_code: str) -> None:
        await purchase(tenant.client, phone(0, area_code))
        before = await everything(tenant.client)
        r = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": phone(0, area_code)}
        )
        assert r.status_code == 409
        assert r.json() == unavailable(r, phone(0, area_code))
        assert await everything(tenant.client) == before

    async def test_number_of_another_org_is_unavailable(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        theirs = await purchase(other_tenant.client, phone(0, area_code))
        their_view = await everything(other_tenant.client)
        before = await everything(tenant.client)
        r = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": phone(0, area_code)}
        )
        assert r.status_code == 409
        assert r.json() == unavailable(r, phone(0, area_code))
        assert await everything(tenant.client) == before
        assert await everything(other_tenant.client) == their_view
        assert their_view["active"]["data"] == [theirs]

    async def test_number_the_provider_does_not_offer(self, tenant: Tenant) -> None:
        not_offered = (
            "+14155551234",  # outside the fictional 555-01xx range
            "+14155550200",
            "+19115550100",  # N11 service code, not an area code
            "+12115550100",
            "+441234567890",  # well-formed E.164, but not a US number
            "+1415555010",  # one digit short
            "+141555501000",  # one digit long
        )
        for phone_number in not_offered:
            r = await tenant.client.post(
                "/v1/numbers/purchase", json={"phone_number": phone_number}
            )
            assert r.status_code == 400, (phone_number, r.text)
            assert r.json() == bad_request(
                r, f"phone number {phone_number} is not offered by the provider"
            )
        assert await everything(tenant.client) == {
            "active": {"data": [], "has_more": False},
            "released": {"data": [], "has_more": False},
        }

    async def test_malformed_e164_is_rejected(self, tenant: Tenant) -> None:
        for phone_number in ("4155550100", "+1 415 555 0100", "+1-415-555-0100", "", "+", "+0415"):
            r = await tenant.client.post(
                "/v1/numbers/purchase", json={"phone_number": phone_number}
            )
            assert r.status_code == 400, (phone_number, r.text)
            assert r.json() == bad_request(
                r, "invalid field phone_number: must be an E.164 number such as +14155550100"
            )

    async def test_phone_number_of_wrong_type_is_rejected(self, tenant: Tenant) -> None:
        for phone_number in (14155550100, None, ["+14155550100"]):
            r = await tenant.client.post(
                "/v1/numbers/purchase", json={"phone_number": phone_number}
            )
            assert r.status_code == 400, (phone_number, r.text)
            assert r.json() == bad_request(r, "invalid field phone_number: must be a string")

    async def test_missing_phone_number_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/numbers/purchase", json={})
        assert r.status_code == 400
        assert r.json() == bad_request(r, "missing required field: phone_number")

    async def test_unknown_field_is_rejected(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase",
            json={"phone_number": phone(0, area_code), "friendly_name": "Main line"},
        )
        assert r.status_code == 400
        assert r.json() == bad_request(r, "unknown field: friendly_name")
        assert (await tenant.client.get("/v1/numbers")).json() == {"data": [], "has_more": False}

    async def test_missing_body_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/numbers/purchase")
        assert r.status_code == 400
        assert r.json() == bad_request(r, "request body is required")

    async def test_body_that_is_not_an_object_is_rejected(
        self, tenant: Tenant, area_code: str
    ) -> None:
        for body in ([phone(0, area_code)], phone(0, area_code), 1):
            r = await tenant.client.post("/v1/numbers/purchase", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json() == bad_request(r, "request body must be a JSON object")

    async def test_failed_purchases_change_nothing(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        mine = await purchase(tenant.client, phone(0, area_code))
        await purchase(other_tenant.client, phone(1, area_code))
        before = await everything(tenant.client)
        attempts = (
            (
                {"phone_number": phone(0, area_code)},
                409,
                f"phone number {phone(0, area_code)} is not available",
            ),
            (
                {"phone_number": phone(1, area_code)},
                409,
                f"phone number {phone(1, area_code)} is not available",
            ),
            (
                {"phone_number": f"+1{area_code}5551234"},
                400,
                f"phone number +1{area_code}5551234 is not offered by the provider",
            ),
            (
                {"phone_number": "907-555-0102"},
                400,
                "invalid field phone_number: must be an E.164 number such as +14155550100",
            ),
            (
                {"phone_number": phone(2, area_code), "status": "released"},
                400,
                "unknown field: status",
            ),
        )
        for attempt, status, message in attempts:
            r = await tenant.client.post("/v1/numbers/purchase", json=attempt)
            assert r.status_code == status, (attempt, r.text)
            code = "number_unavailable" if status == 409 else "invalid_request"
            assert r.json() == {
                "error": message,
                "code": code,
                "request_id": r.headers["x-request-id"],
            }
        assert await everything(tenant.client) == before
        assert before["active"]["data"] == [mine]
        available = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 1}
        )
        assert available.json()["data"][0]["phone_number"] == phone(2, area_code)

    async def test_each_purchase_is_a_new_number(self, tenant: Tenant, area_code: str) -> None:
        first = await purchase(tenant.client, phone(0, area_code))
        second = await purchase(tenant.client, phone(1, area_code))
        assert first["id"] != second["id"]
        assert second["purchased_at"] > first["purchased_at"]
        listed = await tenant.client.get("/v1/numbers")
        assert listed.json() == {"data": [second, first], "has_more": False}
