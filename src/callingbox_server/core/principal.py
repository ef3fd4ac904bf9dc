"""The caller of a request, as the API layer hands it to the domains."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, and the org every query is scoped to."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    mode: str


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller whose key the read itself checks (one statement for the key and the object):
    its key's HMAC, and the principal when the key was checked already."""

    key_hash: bytes
    principal: Principal | None = None


# Enough for every key of a large deployment; past it the map starts again (one lookup each).
MAX_KNOWN_KEYS = 10_000


class KnownOrgs:
    """The org of each key (by its HMAC) found usable lately in this process.

    A key never moves to another org, so this tells fair sharing whose share a request takes
    before the statement that checks the key and reads the object. It decides nothing about
    access: that statement checks the key every time, and a refused key is forgotten.
    """

    def __init__(self) -> None:
        self._orgs: dict[bytes, uuid.UUID] = {}

    def get(self, key_hash: bytes) -> uuid.UUID | None:
        return self._orgs.get(key_hash)

    def remember(self, key_hash: bytes, org_id: uuid.UUID) -> None:
        if len(self._orgs) >= MAX_KNOWN_KEYS:
            self._orgs.clear()
        self._orgs[key_hash] = org_id

    def forget(self, key_hash: bytes) -> None:
        self._orgs.pop(key_hash, None)

    def __len__(self) -> int:
        return len(self._orgs)


known_orgs = KnownOrgs()
