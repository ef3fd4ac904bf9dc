"""The event catalog (section 6 of the contract)."""

from __future__ import annotations

from typing import Literal

# Upstream's call events, exactly; one terminal event per call.
CALL_EVENTS = (
    "call.queued",
    "call.ringing",
    "call.answered",
    "call.completed",
    "call.failed",
    "call.no_answer",
    "call.busy",
    "call.canceled",
)
# Configuration events (beyond upstream): sent only to endpoints that name them.
CONFIGURATION_EVENTS = (
    "agent.created",
    "agent.updated",
    "agent.archived",
    "agent.number_attached",
    "agent.number_detached",
    "number.purchased",
    "number.released",
)
EVENT_TYPES = CALL_EVENTS + CONFIGURATION_EVENTS
EventType = Literal[
    "call.queued",
    "call.ringing",
    "call.answered",
    "call.completed",
    "call.failed",
    "call.no_answer",
    "call.busy",
    "call.canceled",
    "agent.created",
    "agent.updated",
    "agent.archived",
    "agent.number_attached",
    "agent.number_detached",
    "number.purchased",
    "number.released",
]
API_VERSION = "2026-04"
# NOTIFY channel: a committed event wakes whatever delivers events (LISTEN), at once.
CHANNEL = "callingbox_events"
