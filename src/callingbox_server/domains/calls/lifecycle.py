"""Rule 13: which status may follow which, the event each move writes, and a move as data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from callingbox_server.core.models.calls import TERMINAL_STATUSES
from callingbox_server.domains.calls.carriers.interface import CarrierEvent
from callingbox_server.domains.events.types import CallEventType

NEXT: dict[str, tuple[str, ...]] = {
    "queued": ("initiated", "canceled"),
    "initiated": ("ringing", "canceled"),
    "ringing": ("in_progress", "no_answer", "busy", "failed", "canceled"),
    "in_progress": ("completed", "failed"),
}
CANCELABLE = ("queued", "initiated", "ringing")
TERMINAL = TERMINAL_STATUSES
# Upstream's catalog has no event for "initiated": that move writes none.
EVENTS: dict[str, CallEventType] = {
    "queued": "call.queued",
    "ringing": "call.ringing",
    "in_progress": "call.answered",
    "completed": "call.completed",
    "failed": "call.failed",
    "no_answer": "call.no_answer",
    "busy": "call.busy",
    "canceled": "call.canceled",
}


def is_legal(current: str, target: str) -> bool:
    return target in NEXT.get(current, ())


@dataclass(frozen=True, slots=True)
class Move:
    """One call's move from ``from_status``, applied only if the call is still there: a move
    repeated after a crash, or beaten by a cancel, changes nothing."""

    call_id: uuid.UUID
    org_id: uuid.UUID
    from_status: str
    event: CarrierEvent

    @property
    def event_type(self) -> CallEventType | None:
        return EVENTS.get(self.event.status)
