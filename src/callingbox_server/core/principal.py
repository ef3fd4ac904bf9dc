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
