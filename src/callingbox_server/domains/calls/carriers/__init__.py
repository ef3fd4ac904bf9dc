"""Carriers place and play calls; ``create_carrier`` picks one by name (``CALLINGBOX_CARRIER``)."""

from __future__ import annotations

from callingbox_server.core.config import Settings
from callingbox_server.domains.calls.carriers.interface import Carrier
from callingbox_server.domains.calls.carriers.sandbox import SandboxCarrier


def create_carrier(settings: Settings) -> Carrier:
    if settings.carrier == "sandbox":
        return SandboxCarrier(settings.sandbox_ring_seconds, settings.sandbox_talk_seconds)
    raise ValueError(f"unknown carrier: {settings.carrier}")
