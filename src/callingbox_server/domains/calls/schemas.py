"""Wire shapes of calls, and the rules one dispatch or test-helper request is checked against."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from callingbox_server.core.pagination import PageQuery
from callingbox_server.core.schemas import RequestModel, Timestamp
from callingbox_server.core.text import MULTI_LINE, SINGLE_LINE, TextRule
from callingbox_server.domains.agents.schemas import (
    JsonObject,
    Language,
    LongText,
    Returns,
    Tools,
    Url,
    VoicemailAction,
)
from callingbox_server.domains.numbers.schemas import AGENT_ID_EXAMPLE, TIMESTAMP_EXAMPLE

CallStatus = Literal[
    "queued",
    "initiated",
    "ringing",
    "in_progress",
    "completed",
    "no_answer",
    "busy",
    "canceled",
    "failed",
]
# In the order of AgentType: Literals equal as sets share one cached schema in pydantic, so
# another order would make the published enum order depend on import order.
Direction = Literal["inbound", "outbound"]
AnsweredBy = Literal["human", "machine"]
ResultStatus = Literal["pending", "completed", "failed"]
Role = Literal["agent", "caller"]

# The contract's numbers are US only: +1 and ten digits, the area code not starting 0 or 1.
US_NUMBER_PATTERN = r"^\+1[2-9][0-9]{9}$"
UsNumber = Annotated[
    str, TextRule(US_NUMBER_PATTERN, "must be a US number in E.164 form, such as +14155550123")
]
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40), SINGLE_LINE]
MetadataValue = Annotated[str, StringConstraints(max_length=500), SINGLE_LINE]
# A key with control characters is refused, which patternProperties alone does not say.
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=50, json_schema_extra={"additionalProperties": False}),
]
LEGACY_LANGUAGES = ("en", "es")
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=32_000), MULTI_LINE]
ErrorCode = Annotated[
    str,
    TextRule(
        r"^[a-z][a-z0-9_]{0,63}$",
        "must be 1 to 64 lowercase letters, digits or _, such as agent_error",
    ),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=2_000), MULTI_LINE]

CALL_ID_EXAMPLE = "3c7d2a9e-1b4f-4e8a-9c6d-5f0e1a2b3c4d"
_CALL_CREATE_EXAMPLE: JsonDict = {
    "agent_id": AGENT_ID_EXAMPLE,
    "to": "+14155550123",
    "instructions": "Confirm tomorrow's 10am appointment.",
    "context": {"patient_name": "Ada"},
    "metadata": {"crm_id": "42"},
}
CALL_EXAMPLE: JsonDict = {
    "id": CALL_ID_EXAMPLE,
    "agent_id": AGENT_ID_EXAMPLE,
    "direction": "outbound",
    "to_number": "+14155550123",
    "from_number": "+14155550100",
    "status": "completed",
    "answered_by": "human",
    "persona": None,
    "instructions": "Confirm tomorrow's 10am appointment.",
    "prompt": "You are a friendly, concise phone agent.\n\nConfirm tomorrow's 10am appointment.",
    "context": {"patient_name": "Ada"},
    "returns": {"confirmed": "boolean"},
    "result": {"confirmed": True},
    "result_status": "completed",
    "result_error": None,
    "language": "en-US",
    "tools": None,
    "voicemail_action": "hangup",
    "webhook_url": None,
    "webhook_status": "pending",
    "webhook_error": None,
    "metadata": {"crm_id": "42"},
    "created_at": TIMESTAMP_EXAMPLE,
    "updated_at": TIMESTAMP_EXAMPLE,
    "started_at": TIMESTAMP_EXAMPLE,
    "answered_at": TIMESTAMP_EXAMPLE,
    "ended_at": TIMESTAMP_EXAMPLE,
    "duration_seconds": 3,
    "billed_duration_seconds": 2,
    "billing_amount_milli_cents": 300,
    "reservation_status": "settled",
    "error_code": None,
    "error_message": None,
    "hangup_cause": "normal_clearing",
}

# Fields of a call that come from its agent when there is one: only a legacy call takes them.
AGENT_FIELDS = ("language", "returns", "tools", "voicemail_action")


class CallCreate(RequestModel):
    """``POST /v1/calls``: from an outbound agent (``agent_id``), or a legacy call without one."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CALL_CREATE_EXAMPLE]})
    field_hints: ClassVar[dict[str, str]] = {
        "to_number": "to",
        "from": "from_number",
        "webhook": "webhook_url",
        "system_prompt": "instructions",
    }

    agent_id: uuid.UUID | None = Field(
        default=None, description="An outbound agent; without it the call is a legacy call."
    )
    to: UsNumber = Field(description="The number to call.", examples=["+14155550123"])
    from_number: UsNumber | None = Field(
        default=None,
        description="Caller ID: one of the agent's numbers (default its primary); for a legacy "
        "call any active number of yours (default the oldest).",
    )
    instructions: LongText | None = Field(
        default=None, description="This call's task; wins over the agent's instructions."
    )
    prompt: Prompt | None = Field(
        default=None, description='Legacy calls only: the task (default "Hello from CallingBox.").'
    )
    context: JsonObject | None = Field(default=None, description="Data for the agent to use.")
    webhook_url: Url | None = Field(default=None, description="Overrides the agent's webhook.")
    metadata: Metadata | None = Field(
        default=None, description="Up to 50 string keys (40 chars) with string values (500)."
    )
    language: Language | None = Field(
        default=None, description="Legacy calls only: en or es (default en).", examples=["en"]
    )
    returns: Returns | None = Field(default=None, description="Legacy calls only.")
    tools: Tools | None = Field(default=None, description="Legacy calls only.")
    voicemail_action: VoicemailAction | None = Field(
        default=None, description="Legacy calls only (default hangup)."
    )

    @model_validator(mode="before")
    @classmethod
    def _agent_only(cls, data: Any) -> Any:
        """``persona`` and ``voice`` are set on an agent, never per call: say so rather than
        call them unknown. (Which fields each way of dispatching takes is checked by the
        service, once the agent is known: see service.check_fields.)"""
        if isinstance(data, dict):
            for name in ("persona", "voice"):
                if name in data:
                    raise ValueError(
                        f"{name} belongs to the agent and cannot be set per call"
                        + (
                            "; change the agent instead"
                            if data.get("agent_id") is not None
                            else ": dispatch from an agent (agent_id) that has it"
                        )
                    )
        return data


class TranscriptLine(RequestModel):
    role: Role
    text: Annotated[str, StringConstraints(min_length=1, max_length=4_000), MULTI_LINE]


class Advance(RequestModel):
    """``POST /v1/test_helpers/calls/{id}/advance``: one legal step of the lifecycle."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "in_progress", "answered_by": "human"}],
        }
    )

    status: CallStatus = Field(description="The status to move to: the next legal one.")
    answered_by: AnsweredBy | None = Field(
        default=None, description="With in_progress (default human) or no_answer."
    )
    result: JsonObject | None = Field(
        default=None, description="With completed: the extracted result (checked against returns)."
    )
    transcript: Annotated[list[TranscriptLine], Field(max_length=200)] | None = Field(
        default=None, description="With completed or failed: what was said, in order."
    )
    error_code: ErrorCode | None = Field(default=None, description="With failed.")
    error_message: ShortText | None = Field(default=None, description="With failed.")


class InboundCall(RequestModel):
    """``POST /v1/test_helpers/inbound_calls``: a caller dials one of your numbers."""

    model_config = ConfigDict(
        populate_by_name=False,
        json_schema_extra={"examples": [{"to": "+14155550100", "from": "+12125550123"}]},
    )

    to: UsNumber = Field(description="One of your numbers.")
    from_: UsNumber = Field(alias="from", description="The caller's number.")


class CallListQuery(PageQuery):
    agent_id: uuid.UUID | None = None
    direction: Direction | None = None
    status: CallStatus | None = None


class Call(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CALL_EXAMPLE]})

    id: uuid.UUID
    agent_id: uuid.UUID | None = Field(description="Null only for a legacy call.")
    direction: Direction
    to_number: str
    from_number: str
    status: CallStatus
    answered_by: AnsweredBy | None = Field(description="machine means voicemail.")
    persona: str | None
    instructions: str | None
    prompt: str = Field(description="The rendered system prompt: persona, blank line, task.")
    context: dict[str, Any]
    returns: dict[str, str] | None
    result: dict[str, Any] | None
    result_status: ResultStatus
    result_error: str | None
    language: str | None
    tools: list[dict[str, Any]] | None
    voicemail_action: VoicemailAction
    webhook_url: str | None
    webhook_status: Literal["pending", "delivered", "failed"]
    webhook_error: str | None
    metadata: dict[str, str]
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    answered_at: Timestamp | None
    ended_at: Timestamp | None
    duration_seconds: int | None
    billed_duration_seconds: int | None
    billing_amount_milli_cents: int | None
    reservation_status: Literal["reserved", "settled", "released"]
    error_code: str | None
    error_message: str | None
    hangup_cause: str | None


class TranscriptSegment(BaseModel):
    sequence_no: int
    role: Role
    text: str
    started_at: Timestamp
    ended_at: Timestamp | None
    duration_ms: int | None
    source: Literal["tts", "stt"]


class Transcript(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "call_id": CALL_ID_EXAMPLE,
                    "segments": [
                        {
                            "sequence_no": 1,
                            "role": "agent",
                            "text": "Hi, this is your CallingBox agent. Confirm tomorrow's 10am "
                            "appointment.",
                            "started_at": TIMESTAMP_EXAMPLE,
                            "ended_at": TIMESTAMP_EXAMPLE,
                            "duration_ms": 1800,
                            "source": "tts",
                        }
                    ],
                }
            ]
        }
    )

    call_id: uuid.UUID
    segments: list[TranscriptSegment]
