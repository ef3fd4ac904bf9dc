"""Where numbers come from. The rest of the code sees only ``NumbersProvider``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

NumberType = Literal["local", "toll_free"]


@dataclass(frozen=True, slots=True)
class OfferedNumber:
    phone_number: str
    country_code: str
    number_type: NumberType
    state: str | None
    locality: str | None
    monthly_cost_cents: int
    upfront_cost_cents: int
    currency: str
    friendly_name: str | None


@dataclass(frozen=True, slots=True)
class SearchCriteria:
    country_code: str
    area_code: str | None
    number_type: NumberType | None


class NumbersProvider(Protocol):
    """A carrier's inventory: what is on offer, buying a number, and giving it back."""

    async def search(self, criteria: SearchCriteria) -> Sequence[OfferedNumber]:
        """Numbers on offer, best first; the caller filters out those already owned."""
        ...

    async def quote(self, phone_number: str) -> OfferedNumber | None:
        """The offer for one number, without buying it; None when it is not on offer."""
        ...

    async def purchase(self, offer: OfferedNumber) -> None:
        """Buy the number, once our database has recorded this org as its owner."""
        ...

    async def release(self, phone_number: str) -> None:
        """Give a bought number back to the provider."""
        ...


TOLL_FREE_PREFIXES = ("800", "833", "844", "855", "866", "877", "888")
# A few well-known area codes, offered when a search names none, with where they are.
KNOWN_AREA_CODES: dict[str, tuple[str, str]] = {
    "415": ("CA", "San Francisco"),
    "212": ("NY", "New York"),
    "312": ("IL", "Chicago"),
    "512": ("TX", "Austin"),
    "617": ("MA", "Boston"),
    "206": ("WA", "Seattle"),
    "305": ("FL", "Miami"),
    "213": ("CA", "Los Angeles"),
}
_SANDBOX_NUMBER = re.compile(r"\+1(?P<npa>[2-9]\d\d)55501(?P<line>\d\d)")
AREA_CODE = re.compile(r"[2-9]\d\d")


def is_area_code(value: str) -> bool:
    """NANP area code syntax: NXX, excluding the N11 service codes (211, 411, 911, ...)."""
    return AREA_CODE.fullmatch(value) is not None and value[1:] != "11"


class SandboxProvider:
    """Fictional US numbers, no network: ``+1 NPA 555 01xx`` and toll-free ``+1 8xx 555 01xx``.

    Every valid area code has the same hundred lines (the 555-01xx range is reserved for fiction),
    at fixed prices: local 100 cents a month, toll-free 200, nothing upfront.
    """

    async def search(self, criteria: SearchCriteria) -> Sequence[OfferedNumber]:
        if criteria.country_code != "US":
            return []
        return [self._offer(npa, line) for npa in self._area_codes(criteria) for line in range(100)]

    async def quote(self, phone_number: str) -> OfferedNumber | None:
        match = _SANDBOX_NUMBER.fullmatch(phone_number)
        if match is None or not is_area_code(match["npa"]):
            return None
        return self._offer(match["npa"], int(match["line"]))

    async def purchase(self, offer: OfferedNumber) -> None:
        return None

    async def release(self, phone_number: str) -> None:
        return None

    @staticmethod
    def _area_codes(criteria: SearchCriteria) -> list[str]:
        wanted = criteria.number_type
        if criteria.area_code is not None:
            toll_free = criteria.area_code in TOLL_FREE_PREFIXES
            if wanted is None or wanted == ("toll_free" if toll_free else "local"):
                return [criteria.area_code]
            return []
        local = list(KNOWN_AREA_CODES)
        if wanted == "local":
            return local
        if wanted == "toll_free":
            return list(TOLL_FREE_PREFIXES)
        return local + list(TOLL_FREE_PREFIXES)

    @staticmethod
    def _offer(npa: str, line: int) -> OfferedNumber:
        toll_free = npa in TOLL_FREE_PREFIXES
        state, locality = (None, None) if toll_free else KNOWN_AREA_CODES.get(npa, (None, None))
        return OfferedNumber(
            phone_number=f"+1{npa}55501{line:02d}",
            country_code="US",
            number_type="toll_free" if toll_free else "local",
            state=state,
            locality=locality,
            monthly_cost_cents=200 if toll_free else 100,
            upfront_cost_cents=0,
            currency="USD",
            friendly_name=f"({npa}) 555-01{line:02d}",
        )


def create_provider(name: str) -> NumbersProvider:
    if name == "sandbox":
        return SandboxProvider()
    raise ValueError(f"unknown numbers provider: {name}")
