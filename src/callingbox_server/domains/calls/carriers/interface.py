"""What a carrier does for calls, and what it reports back. Nothing outside ``carriers`` knows
which carrier runs: the runner asks it for each call's next event and records what it says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# In the order of AgentType: Literals equal as sets share one cached schema in pydantic, so
# another order would make the published enum order depend on import order.
Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True, slots=True)
class Dial:
    """A call about to be created: refused here, it is never created."""

    direction: Direction
    to_number: str
    from_number: str


@dataclass(frozen=True, slots=True)
class CallState:
    """What a carrier may know of a call when it is asked about it."""

    id: uuid.UUID
    direction: Direction
    to_number: str
    from_number: str
    status: str
    voicemail_action: str
    instructions: str | None
    returns: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    """The call's next status and what came with it. ``None`` fields leave the call's value as
    it is; ``next_in`` is how many seconds until the carrier has its next event for this call
    (None: none of its own, the call waits for someone else to move it)."""

    status: str
    answered_by: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    hangup_cause: str | None = None
    transcript: tuple[tuple[str, str], ...] | None = None
    result: dict[str, Any] | None = None
    result_status: str | None = None
    result_error: str | None = None
    next_in: float | None = None


class Carrier(Protocol):
    name: str
    # Milli-cents per billed (answered) second.
    rate_milli_cents: int
    # Whether the test helpers may drive its calls (the sandbox's only).
    test_helpers: bool

    async def place(self, dial: Dial) -> float | None:
        """Accept a call, or raise ``CarrierUnavailable``; returns when its first event is due
        (seconds from now), None if it has none of its own."""
        ...

    async def cancel(self, call: CallState) -> None:
        """Hang up a call that has not been answered."""
        ...

    async def next_event(self, call: CallState) -> CarrierEvent | None:
        """The call's next event now that it is due; None if nothing happened (ask again
        later, never: the call stays as it is)."""
        ...
