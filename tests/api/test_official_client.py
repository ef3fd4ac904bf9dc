"""The official ``callingbox`` client (0.1.0), pointed at a live server, works unchanged."""

from __future__ import annotations

import asyncio

import callingbox
import pytest
from callingbox.types.number import AvailableNumber, PhoneNumber

from callingbox_server.domains.numbers.providers import KNOWN_AREA_CODES
from tests.fixtures.numbers import known_area_code, phone

LIMIT = 3


def _exercise(base_url: str, key: str) -> None:
    with callingbox.Callingbox(api_key=key, base_url=base_url) as client:
        # It buys (and commits), so in an area code no other test uses; one with a place.
        area_code = known_area_code()
        offers = client.numbers.search_available(area_code=area_code, limit=5)
        assert len(offers) == 5
        assert all(isinstance(offer, AvailableNumber) for offer in offers)
        assert offers[0].phone_number == phone(0, area_code)
        assert offers[0].state == KNOWN_AREA_CODES[area_code][0]
        assert offers[0].monthly_cost_cents == 100

        bought = [client.numbers.purchase(offer.phone_number) for offer in offers]
        assert all(isinstance(number, PhoneNumber) for number in bought)
        assert [number.e164 for number in bought] == [offer.phone_number for offer in offers]
        assert all(number.status == "active" for number in bought)

        page = client.numbers.list(limit=LIMIT)
        assert page.has_more is True
        assert [number.id for number in page] == [number.id for number in reversed(bought)][:LIMIT]

        every = list(client.numbers.iter_numbers(limit=2))
        assert [number.id for number in every] == [number.id for number in reversed(bought)]

        newest_first = [number.id for number in reversed(bought)]
        backward = list(client.numbers.iter_numbers(limit=2, ending_before=bought[0].id))
        assert [number.id for number in backward] == newest_first[:-1]

        with pytest.raises(callingbox.APIError) as taken:
            client.numbers.purchase(offers[0].phone_number)
        assert taken.value.status_code == 409

    with (
        callingbox.Callingbox(api_key="sk_live_" + "x" * 40, base_url=base_url) as stranger,
        pytest.raises(callingbox.AuthenticationError),
    ):
        stranger.numbers.list()


@pytest.mark.system
async def test_official_client_numbers(live_server: str, live_key: str) -> None:
    await asyncio.to_thread(_exercise, live_server, live_key)
