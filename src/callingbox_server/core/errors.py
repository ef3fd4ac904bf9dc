"""The errors the API answers with, as exceptions that know their status and code.

Domains raise them; ``api.exception_handlers`` renders each as ``{"error", "code", "request_id"}``.
Nothing here imports HTTP machinery, so a worker can raise and catch them without an app.

    ApiError (500 internal_error)
    ├── InvalidRequest (400 invalid_request)
    ├── Unauthorized (401 unauthorized)
    ├── NotFound (404 not_found)
    ├── MethodNotAllowed (405 method_not_allowed)
    ├── NumberInUse, AgentArchived, NumberUnavailable, IdempotencyInProgress (409)
    ├── CallNotCancelable, InvalidTransition, NoInboundAgent (409)
    ├── PreconditionFailed (412 precondition_failed)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── IdempotencyKeyReused (422 idempotency_key_reused)
    ├── RateLimited (429 rate_limited)
    ├── CarrierUnavailable (502 carrier_unavailable)
    ├── ServiceUnavailable (503 unavailable)
    └── Overloaded (503 overloaded)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """The body of every non-2xx response."""

    error: str
    code: str
    request_id: str


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def __init__(self) -> None:
        # RFC 9110 11.6.1: a 401 names the scheme that would be accepted.
        super().__init__("invalid or missing API key", headers={"WWW-Authenticate": "Bearer"})


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class NumberInUse(ApiError):
    status = 409
    code = "number_in_use"


class AgentArchived(ApiError):
    status = 409
    code = "agent_archived"


class NumberUnavailable(ApiError):
    status = 409
    code = "number_unavailable"


class IdempotencyInProgress(ApiError):
    status = 409
    code = "idempotency_in_progress"


class CallNotCancelable(ApiError):
    status = 409
    code = "call_not_cancelable"


class InvalidTransition(ApiError):
    status = 409
    code = "invalid_transition"


class NoInboundAgent(ApiError):
    status = 409
    code = "no_inbound_agent"


class PreconditionFailed(ApiError):
    status = 412
    code = "precondition_failed"


class IdempotencyKeyReused(ApiError):
    status = 422
    code = "idempotency_key_reused"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"


class CarrierUnavailable(ApiError):
    """The carrier refused to place the call; nothing was created."""

    status = 502
    code = "carrier_unavailable"


class ServiceUnavailable(ApiError):
    status = 503
    code = "unavailable"


class Overloaded(ApiError):
    """Every database connection stayed busy for the pool timeout, the database being up."""

    status = 503
    code = "overloaded"
