"""What the numbers provider is asked to do: only the winner of a purchase buys from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from callingbox_server.domains.numbers.providers import OfferedNumber, SandboxProvider
from tests.fixtures.tenants import Tenant


class RecordingProvider(SandboxProvider):
    """The sandbox, writing down every purchase and release."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def purchase(self, offer: OfferedNumber) -> None:
        self.calls.append(("purchase", offer.phone_number))

    async def release(self, phone_number: str) -> None:
        self.calls.append(("release", phone_number))


@pytest.fixture
def provider(app: FastAPI) -> Iterator[RecordingProvider]:
    original = app.state.numbers_provider
    app.state.numbers_provider = recording = RecordingProvider()
    yield recording
    app.state.numbers_provider = original


class TestProviderCalls:
    async def test_a_purchase_buys_from_the_provider_once(
        self, tenant: Tenant, provider: RecordingProvider
    ) -> None:
        phone_number = tenant.phones.phone(0)
        r = await tenant.client.post("/v1/numbers/purchase", json={"phone_number": phone_number})

        assert r.status_code == 201
        assert provider.calls == [("purchase", phone_number)]

    async def test_a_refused_purchase_never_reaches_the_provider(
        self, tenant: Tenant, other_tenant: Tenant, provider: RecordingProvider
    ) -> None:
        body = {"phone_number": tenant.phones.phone(0)}
        assert (await tenant.client.post("/v1/numbers/purchase", json=body)).status_code == 201
        provider.calls.clear()

        taken = await other_tenant.client.post("/v1/numbers/purchase", json=body)
        not_offered = await other_tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": "+19075551234"}
        )

        assert (taken.status_code, not_offered.status_code) == (409, 400)
        assert provider.calls == []

    async def test_a_release_gives_the_number_back_once(
        self, tenant: Tenant, provider: RecordingProvider
    ) -> None:
        phone_number = tenant.phones.phone(0)
        bought = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": phone_number}
        )
        number_id = bought.json()["id"]

        first = await tenant.client.delete(f"/v1/numbers/{number_id}")
        again = await tenant.client.delete(f"/v1/numbers/{number_id}")

        assert (first.status_code, again.status_code) == (200, 200)
        assert provider.calls == [("purchase", phone_number), ("release", phone_number)]
