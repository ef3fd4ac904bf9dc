"""GET /v1/numbers/available: the sandbox inventory, less every number some org owns."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.fixtures.numbers import phone
from tests.fixtures.tenants import Tenant

KNOWN_LOCAL = {
    "415": ("CA", "San Francisco"),
    "212": ("NY", "New York"),
}


def offer(npa: str, line: int) -> dict[str, Any]:
    """An AvailableNumber as the sandbox provider describes ``+1 NPA 555 01xx``."""
    toll_free = npa in ("800", "833", "844", "855", "866", "877", "888")
    state, locality = (None, None) if toll_free else KNOWN_LOCAL.get(npa, (None, None))
    return {
        "phone_number": f"+1{npa}55501{line:02d}",
        "country_code": "US",
        "number_type": "toll_free" if toll_free else "local",
        "state": state,
        "locality": locality,
        "monthly_cost_cents": 200 if toll_free else 100,
        "upfront_cost_cents": 0,
        "currency": "USD",
    }


async def owned_anywhere(sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
    """Numbers any org owns now, committed by other tests included (they are never offered)."""
    async with sessionmaker() as session:
        rows = await session.scalars(text("SELECT e164 FROM numbers WHERE status = 'active'"))
        return set(rows.all())


async def free_offers(
    sessionmaker: async_sessionmaker[AsyncSession], npa: str, count: int
) -> list[dict[str, Any]]:
    owned = await owned_anywhere(sessionmaker)
    offers = [offer(npa, line) for line in range(100)]
    return [o for o in offers if o["phone_number"] not in owned][:count]


def bad_request(r: httpx.Response, message: str) -> dict[str, str]:
    return {"error": message, "code": "invalid_request", "request_id": r.headers["x-request-id"]}


async def purchase(client: httpx.AsyncClient, phone_number: str) -> dict[str, Any]:
    r = await client.post("/v1/numbers/purchase", json={"phone_number": phone_number})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


class TestSearchAvailableNumbers:
    async def test_defaults_to_ten_us_numbers_in_a_fixed_order(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        r = await tenant.client.get("/v1/numbers/available")
        assert r.status_code == 200, r.text
        assert r.json() == {"data": await free_offers(sessionmaker, "415", 10)}
        again = await tenant.client.get("/v1/numbers/available")
        assert again.json() == r.json()

    async def test_explicit_us_country_code_is_the_default(self, tenant: Tenant) -> None:
        default = await tenant.client.get("/v1/numbers/available")
        explicit = await tenant.client.get("/v1/numbers/available", params={"country_code": "US"})
        assert explicit.status_code == 200, explicit.text
        assert explicit.json() == default.json()

    async def test_area_code_filter(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"area_code": area_code})
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [offer(area_code, line) for line in range(10)]}

    async def test_known_area_code_carries_state_and_locality(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        r = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": "212", "limit": 2}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"data": await free_offers(sessionmaker, "212", 2)}
        first = r.json()["data"][0]
        assert first == {
            "phone_number": first["phone_number"],
            "country_code": "US",
            "number_type": "local",
            "state": "NY",
            "locality": "New York",
            "monthly_cost_cents": 100,
            "upfront_cost_cents": 0,
            "currency": "USD",
        }
        assert re.fullmatch(r"\+121255501\d\d", first["phone_number"])

    async def test_area_code_without_a_known_place(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 1}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "data": [
                {
                    "phone_number": phone(0, area_code),
                    "country_code": "US",
                    "number_type": "local",
                    "state": None,
                    "locality": None,
                    "monthly_cost_cents": 100,
                    "upfront_cost_cents": 0,
                    "currency": "USD",
                }
            ]
        }

    async def test_toll_free_area_code(self, tenant: Tenant) -> None:
        r = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": "877", "limit": 3}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "data": [
                {
                    "phone_number": f"+187755501{line:02d}",
                    "country_code": "US",
                    "number_type": "toll_free",
                    "state": None,
                    "locality": None,
                    "monthly_cost_cents": 200,
                    "upfront_cost_cents": 0,
                    "currency": "USD",
                }
                for line in range(3)
            ]
        }

    async def test_number_type_toll_free(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"number_type": "toll_free"})
        assert r.status_code == 200, r.text
        assert r.json() == {"data": await free_offers(sessionmaker, "800", 10)}

    async def test_number_type_local(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"number_type": "local"})
        assert r.status_code == 200, r.text
        assert r.json() == {"data": await free_offers(sessionmaker, "415", 10)}

    async def test_number_type_and_area_code_together(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.get(
            "/v1/numbers/available",
            params={"area_code": area_code, "number_type": "local", "limit": 2},
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [offer(area_code, 0), offer(area_code, 1)]}

    async def test_number_type_that_contradicts_the_area_code_finds_nothing(
        self, tenant: Tenant, area_code: str
    ) -> None:
        toll_free_as_local = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": "800", "number_type": "local"}
        )
        assert toll_free_as_local.status_code == 200, toll_free_as_local.text
        assert toll_free_as_local.json() == {"data": []}
        local_as_toll_free = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "number_type": "toll_free"}
        )
        assert local_as_toll_free.status_code == 200, local_as_toll_free.text
        assert local_as_toll_free.json() == {"data": []}

    async def test_limit_of_fifty_is_allowed(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 50}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [offer(area_code, line) for line in range(50)]}

    async def test_limit_of_one_is_allowed(self, tenant: Tenant, area_code: str) -> None:
        r = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 1}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [offer(area_code, 0)]}

    async def test_limit_zero_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"limit": 0})
        assert r.status_code == 400
        assert r.json() == bad_request(r, "invalid query parameter limit: must be at least 1")

    async def test_limit_over_fifty_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"limit": 51})
        assert r.status_code == 400
        assert r.json() == bad_request(r, "invalid query parameter limit: must be at most 50")

    async def test_limit_not_a_number_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"limit": "ten"})
        assert r.status_code == 400
        assert r.json() == bad_request(
            r,
            "invalid query parameter limit: must be a whole number",
        )

    async def test_country_other_than_us_is_rejected(self, tenant: Tenant) -> None:
        for country in ("CA", "GB", "us", ""):
            r = await tenant.client.get("/v1/numbers/available", params={"country_code": country})
            assert r.status_code == 400, (country, r.text)
            assert r.json() == bad_request(r, "invalid query parameter country_code: must be US")

    async def test_malformed_area_code_is_rejected(self, tenant: Tenant) -> None:
        # "123": area codes never start with 0 or 1.
        for area_code in ("41", "abc", "123", "4155", "023", ""):
            r = await tenant.client.get("/v1/numbers/available", params={"area_code": area_code})
            assert r.status_code == 400, (area_code, r.text)
            assert r.json() == bad_request(
                r,
                "invalid query parameter area_code: must be a three-digit area code such as 415",
            )

    async def test_service_code_is_not_an_area_code(self, tenant: Tenant) -> None:
        for area_code in ("911", "411", "211"):
            r = await tenant.client.get("/v1/numbers/available", params={"area_code": area_code})
            assert r.status_code == 400, (area_code, r.text)
            assert r.json() == bad_request(
                r, f"invalid query parameter area_code: {area_code} is not in use"
            )

    async def test_unknown_number_type_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"number_type": "mobile"})
        assert r.status_code == 400
        assert r.json() == bad_request(
            r, "invalid query parameter number_type: must be local or toll_free"
        )

    async def test_unknown_query_parameter_is_rejected(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/numbers/available", params={"areacode": "415"})
        assert r.status_code == 400
        assert r.json() == bad_request(r, "unknown query parameter: areacode")

    async def test_numbers_owned_by_any_org_are_not_offered(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        await purchase(tenant.client, phone(1, area_code))
        await purchase(other_tenant.client, phone(3, area_code))
        for client in (tenant.client, other_tenant.client):
            r = await client.get(
                "/v1/numbers/available", params={"area_code": area_code, "limit": 5}
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"data": [offer(area_code, line) for line in (0, 2, 4, 5, 6)]}

    async def test_owned_numbers_do_not_shorten_the_page(
        self, tenant: Tenant, area_code: str
    ) -> None:
        for line in range(3):
            await purchase(tenant.client, phone(line, area_code))
        r = await tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 50}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [offer(area_code, line) for line in range(3, 53)]}

    async def test_released_numbers_are_offered_again(
        self, tenant: Tenant, other_tenant: Tenant, area_code: str
    ) -> None:
        number = await purchase(tenant.client, phone(0, area_code))
        r = await other_tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 2}
        )
        assert r.json() == {"data": [offer(area_code, 1), offer(area_code, 2)]}
        released = await tenant.client.delete(f"/v1/numbers/{number['id']}")
        assert released.status_code == 200, released.text
        r = await other_tenant.client.get(
            "/v1/numbers/available", params={"area_code": area_code, "limit": 2}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"data": [offer(area_code, 0), offer(area_code, 1)]}
