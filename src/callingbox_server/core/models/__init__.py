"""Every table, one module per area. Invariants that must survive concurrent requests are
constraints here, not code. Import this package (``models.Agent``): importing it registers
every table on ``Base.metadata``, which Alembic compares with the database."""

from callingbox_server.core.models.agents import Agent, AgentNumber
from callingbox_server.core.models.base import NAMING_CONVENTION, NOW, Base
from callingbox_server.core.models.calls import Call, CallTranscriptSegment
from callingbox_server.core.models.events import Event
from callingbox_server.core.models.idempotency import IdempotencyKey
from callingbox_server.core.models.numbers import Number
from callingbox_server.core.models.orgs import ApiKey, Org
from callingbox_server.core.models.webhooks import (
    OrgSigningSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "NAMING_CONVENTION",
    "NOW",
    "Agent",
    "AgentNumber",
    "ApiKey",
    "Base",
    "Call",
    "CallTranscriptSegment",
    "Event",
    "IdempotencyKey",
    "Number",
    "Org",
    "OrgSigningSecret",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
