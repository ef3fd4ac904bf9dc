"""The event catalog (section 6 of the contract)."""

from __future__ import annotations

from typing import Literal, get_args

# Upstream's call events, exactly; one terminal event per call.
CallEventType = Literal[
    "call.queued",
    "call.ringing",
    "call.answered",
    "call.completed",
    "call.failed",
    "call.no_answer",
    "call.busy",
    "call.canceled",
]
# Configuration events (beyond upstream): sent only to endpoints that name them.
ConfigurationEventType = Literal[
    "agent.created",
    "agent.updated",
    "agent.archived",
    "agent.number_attached",
    "agent.number_detached",
    "number.purchased",
    "number.released",
]
EventType = CallEventType | ConfigurationEventType
CALL_EVENTS: tuple[str, ...] = get_args(CallEventType)
CONFIGURATION_EVENTS: tuple[str, ...] = get_args(ConfigurationEventType)
EVENT_TYPES = CALL_EVENTS + CONFIGURATION_EVENTS
API_VERSION = "2026-04"
# NOTIFY channel: a committed event wakes whatever delivers events (LISTEN), at once.
CHANNEL = "callingbox_events"
