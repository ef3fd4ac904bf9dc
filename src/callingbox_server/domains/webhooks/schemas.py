"""Wire shapes of webhook endpoints, deliveries and attempts."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.config import JsonDict

from callingbox_server.core.pagination import PageQuery
from callingbox_server.core.schemas import QueryInt, RequestModel, Timestamp
from callingbox_server.core.text import SINGLE_LINE
from callingbox_server.domains.agents.schemas import Url, _without_null
from callingbox_server.domains.events.types import (
    EVENT_TYPES,
    CallEventType,
    ConfigurationEventType,
)
from callingbox_server.domains.numbers.schemas import TIMESTAMP_EXAMPLE

EndpointStatus = Literal["enabled", "disabled"]
DeliveryStatus = Literal["pending", "delivered", "exhausted"]
MAX_ENABLED_EVENTS = len(EVENT_TYPES) + 1

_ENDPOINT_ID_EXAMPLE = "5e0c7b9a-1d2f-4a3b-8c4d-6e7f8a9b0c1d"
_ORG_ID_EXAMPLE = "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6"
_CALL_ID_EXAMPLE = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"
_DELIVERY_ID_EXAMPLE = "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b"
ENDPOINT_EXAMPLE: JsonDict = {
    "id": _ENDPOINT_ID_EXAMPLE,
    "org_id": _ORG_ID_EXAMPLE,
    "url": "https://example.com/callingbox/webhook",
    "description": "Call results to the CRM",
    "enabled_events": ["*"],
    "status": "enabled",
    "disabled_reason": None,
    "disabled_at": None,
    "consecutive_failures": 0,
    "created_at": TIMESTAMP_EXAMPLE,
    "updated_at": TIMESTAMP_EXAMPLE,
}
DELIVERY_EXAMPLE: JsonDict = {
    "id": _DELIVERY_ID_EXAMPLE,
    "org_id": _ORG_ID_EXAMPLE,
    "endpoint_id": _ENDPOINT_ID_EXAMPLE,
    "call_id": _CALL_ID_EXAMPLE,
    "event_type": "call.completed",
    "url": "https://example.com/callingbox/webhook",
    "status": "delivered",
    "attempt_count": 1,
    "manual_retry_count": 0,
    "next_attempt_at": TIMESTAMP_EXAMPLE,
    "last_error": None,
    "last_response_status": 200,
    "delivered_at": TIMESTAMP_EXAMPLE,
    "created_at": TIMESTAMP_EXAMPLE,
    "updated_at": TIMESTAMP_EXAMPLE,
}
ATTEMPT_EXAMPLE: JsonDict = {
    "id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a",
    "delivery_id": _DELIVERY_ID_EXAMPLE,
    "attempt_number": 1,
    "trigger": "automatic",
    "started_at": TIMESTAMP_EXAMPLE,
    "duration_ms": 42,
    "response_status": 200,
    "response_body": '{"received": true}',
    "error": None,
}


def _no_repeats(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not name an event type twice")
    return values


# One flat enum ("*": every call event); a union of literals would word errors per branch.
EventName = Literal["*", CallEventType, ConfigurationEventType]
EnabledEvents = Annotated[
    list[EventName],
    Field(min_length=1, max_length=MAX_ENABLED_EVENTS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_no_repeats),
]


def _given(value: Any) -> Any:
    """A field that may be left out but not cleared: null is refused (runs only when sent)."""
    if value is None:
        raise ValueError("must not be null")
    return value


Description = Annotated[str, StringConstraints(max_length=1000), SINGLE_LINE]


class WebhookEndpointCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"url": "https://example.com/callingbox/webhook"}]}
    )

    url: Url = Field(
        description="Where deliveries go: an https URL (http only to an allowed private address)."
    )
    description: Description | None = None
    enabled_events: EnabledEvents = Field(
        default_factory=lambda: list[EventName](["*"]),
        description='Event types to send; "*" is every call event (configuration events are '
        "sent only when named).",
    )


class WebhookEndpointUpdate(RequestModel):
    """Only the fields present change; ``description`` may be null (cleared), the rest not."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "enabled"}, {"enabled_events": ["*"]}]}
    )

    # Not nullable: None only stands for "absent", so the schema does not offer null.
    url: Annotated[Url | None, BeforeValidator(_given)] = Field(
        default=None, json_schema_extra=_without_null
    )
    description: Description | None = None
    enabled_events: Annotated[EnabledEvents | None, BeforeValidator(_given)] = Field(
        default=None, json_schema_extra=_without_null
    )
    status: Annotated[EndpointStatus | None, BeforeValidator(_given)] = Field(
        default=None, json_schema_extra=_without_null
    )


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ENDPOINT_EXAMPLE]})

    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    description: str | None
    enabled_events: list[str]
    status: EndpointStatus
    disabled_reason: Literal["manual", "too_many_failures"] | None
    disabled_at: Timestamp | None
    consecutive_failures: int = Field(description="Exhausted deliveries in a row.")
    created_at: Timestamp
    updated_at: Timestamp


class WebhookEndpointWithSecret(WebhookEndpoint):
    """Create and rotate_secret only: the one time the secret is shown."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**ENDPOINT_EXAMPLE, "signing_secret": "whsec_..."}]}
    )

    signing_secret: str = Field(description="Verifies CallingBox-Signature; keep it secret.")


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [DELIVERY_EXAMPLE]})

    id: uuid.UUID = Field(description="Also the envelope's id and CallingBox-Event-Id.")
    org_id: uuid.UUID
    endpoint_id: uuid.UUID | None = Field(description="Null for a call's inline webhook_url.")
    call_id: uuid.UUID | None
    event_type: str
    url: str
    status: DeliveryStatus
    attempt_count: int
    manual_retry_count: int
    next_attempt_at: Timestamp | None = Field(
        description="When it is due; null once delivered or exhausted, or while its endpoint "
        "is disabled."
    )
    last_error: str | None
    last_response_status: int | None
    delivered_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookAttempt(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ATTEMPT_EXAMPLE]})

    id: uuid.UUID
    delivery_id: uuid.UUID
    attempt_number: int
    trigger: Literal["automatic", "manual"]
    started_at: Timestamp
    duration_ms: int
    response_status: int | None = Field(description="Null when no response came back.")
    response_body: str | None = Field(description="The first 1,024 bytes, as text.")
    error: str | None


class DeliveryListQuery(PageQuery):
    limit: QueryInt = Field(default=50, ge=1, le=200, description="Page size, 1 to 200.")
    endpoint_id: uuid.UUID | None = None
    call_id: uuid.UUID | None = None
    status: DeliveryStatus | None = None
