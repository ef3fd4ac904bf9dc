"""Wire shapes of agents, and every validation rule a single request can be checked against."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any, ClassVar, Literal

import langcodes
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from callingbox_server.core.pagination import PageQuery
from callingbox_server.core.schemas import RequestModel, Timestamp
from callingbox_server.core.text import MULTI_LINE, NOT_BLANK, SINGLE_LINE, TextRule
from callingbox_server.domains.numbers.schemas import (
    AGENT_ID_EXAMPLE,
    NUMBER_EXAMPLE,
    NUMBER_ID_EXAMPLE,
    TIMESTAMP_EXAMPLE,
    Number,
)

# OpenAPI examples, in the shapes of the CallingBox API reference.
_RETURNS_EXAMPLE: JsonDict = {"confirmed": "boolean", "reschedule_to": "string"}
_INSTRUCTIONS_EXAMPLE = "Confirm tomorrow's appointment; offer to reschedule if needed."
AGENT_CREATE_EXAMPLE: JsonDict = {
    "name": "Appointment reminders",
    "type": "outbound",
    "instructions": _INSTRUCTIONS_EXAMPLE,
    "language": "en-US",
    "returns": _RETURNS_EXAMPLE,
    "webhook_url": "https://example.com/callingbox/webhook",
    "voicemail_action": "leave_message",
    "number_ids": [NUMBER_ID_EXAMPLE],
}
AGENT_EXAMPLE: JsonDict = {
    "id": AGENT_ID_EXAMPLE,
    "org_id": "7d1f0e2a-3b4c-4d5e-8f60-718293a4b5c6",
    "user_id": "c3a1e5d7-2b4f-4e6a-9c8d-0f1e2d3c4b5a",
    "name": "Appointment reminders",
    "type": "outbound",
    "persona": None,
    "instructions": _INSTRUCTIONS_EXAMPLE,
    "voice": None,
    "language": "en-US",
    "returns": _RETURNS_EXAMPLE,
    "tools": None,
    "webhook_url": "https://example.com/callingbox/webhook",
    "voicemail_action": "leave_message",
    "primary_number_id": NUMBER_ID_EXAMPLE,
    "archived_at": None,
    "created_at": TIMESTAMP_EXAMPLE,
    "updated_at": TIMESTAMP_EXAMPLE,
    "numbers": [NUMBER_EXAMPLE],
}

AgentType = Literal["inbound", "outbound"]
VoicemailAction = Literal["hangup", "leave_message"]
MAX_TOOLS = 16
MAX_RETURNS = 50
MAX_JSON_DEPTH = 32

_http_url = TypeAdapter(AnyHttpUrl)


# An absolute http(s) URL written out in full: optional user info, a DNS name (its last label
# starts with a letter, so it is never read as an IPv4 address) or a dotted-quad IPv4 address, an
# optional port 1..65535, then printable ASCII. It is the server's rule and the OpenAPI pattern.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9._~!$&'()*+,;=:%-]*@)?"
    rf"(?:(?:{_LABEL}\.)*[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?|{_OCTET}(?:\.{_OCTET}){{3}})"
    rf"(?::{_PORT})?(?:[/?#][!-~]*)?$"
)
_URL_MESSAGE = "must be an absolute http(s) URL such as https://example.com/hook"


def _absolute_http_url(value: str) -> str:
    # The pattern decides; pydantic's parser, which is more lenient, must agree as well.
    try:
        url = _http_url.validate_python(value)
    except ValidationError:
        raise ValueError(_URL_MESSAGE) from None
    if not url.host:
        raise ValueError(_URL_MESSAGE)
    return value


# The syntax of a BCP-47 tag (subtags of 1..8 letters or digits, the first letters only); whether
# its subtags are registered is checked by langcodes, which the pattern cannot say.
LANGUAGE_PATTERN = r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$"


def _bcp47(value: str) -> str:
    if not langcodes.tag_is_valid(value):
        raise ValueError("must be a BCP-47 language tag such as en, en-US or es-419")
    return value


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _plain_json(value: dict[str, Any]) -> dict[str, Any]:
    """What PostgreSQL can store and any JSON parser can read back.

    Python's json module accepts NaN, Infinity and lone surrogates (\\ud800), none of which JSON
    allows, and PostgreSQL's text cannot hold NUL. The walk is iterative and stops at the depth
    limit, so hostile nesting cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"must not nest deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or Infinity")
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValueError("must not contain NUL characters")
            if not item.isascii() and _has_surrogates(item):
                raise ValueError("must not contain unpaired surrogates")
    return value


def _json_schema_object(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("type") != "object":
        raise ValueError('must be a JSON Schema object, with "type": "object"')
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_plain_json)]
JsonSchemaObject = Annotated[
    JsonObject,
    AfterValidator(_json_schema_object),
    Field(json_schema_extra={"properties": {"type": {"const": "object"}}, "required": ["type"]}),
]
Url = Annotated[
    str,
    StringConstraints(max_length=2048),
    TextRule(URL_PATTERN, _URL_MESSAGE),
    AfterValidator(_absolute_http_url),
]
Language = Annotated[
    str,
    StringConstraints(max_length=64),
    TextRule(LANGUAGE_PATTERN, "must be a BCP-47 language tag such as en, en-US or es-419"),
    AfterValidator(_bcp47),
]
ToolName = Annotated[
    str,
    TextRule(
        r"^[A-Za-z0-9_-]{1,64}$",
        "must be 1 to 64 letters, digits, _ or -, such as book_appointment",
    ),
]
HeaderName = Annotated[
    str,
    TextRule(
        r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$",
        "must be an HTTP header name of up to 128 characters, without spaces or separators, "
        "such as X-Api-Key",
    ),
]
HeaderValue = Annotated[str, StringConstraints(max_length=4096), SINGLE_LINE]
ReturnName = Annotated[
    str,
    TextRule(
        r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        "must be 1 to 64 letters, digits or _, not starting with a digit, such as caller_name",
    ),
]
Policy = Literal["read", "confirm_first_write"]


def _integral_float(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON has one number type: 1500.0 is the integer 1500 (as JSON Schema counts it), "1500" is not.
TimeoutMs = Annotated[StrictInt, Field(ge=100, le=60_000), BeforeValidator(_integral_float)]
# A key that does not match the pattern is refused, which patternProperties alone does not say.
_ONLY_PATTERN_KEYS = {"additionalProperties": False}
Headers = Annotated[
    dict[HeaderName, HeaderValue], Field(max_length=32, json_schema_extra=_ONLY_PATTERN_KEYS)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), SINGLE_LINE, NOT_BLANK]
LongText = Annotated[str, StringConstraints(max_length=32_000), MULTI_LINE]
Voice = Annotated[str, StringConstraints(min_length=1, max_length=100), SINGLE_LINE, NOT_BLANK]
Description = Annotated[str, StringConstraints(min_length=1, max_length=2_000), MULTI_LINE]


class HttpTool(RequestModel):
    """A tool the agent calls over HTTP during a call."""

    type: Literal["http"]
    name: ToolName
    description: Description
    policy: Policy
    url: Url
    parameters: JsonSchemaObject
    headers: Headers | None = None
    timeout_ms: TimeoutMs | None = None


class BuiltinTool(RequestModel):
    """A platform tool (``end_call``, for example) that needs no endpoint of yours."""

    type: Literal["builtin"]
    name: ToolName
    description: Description
    policy: Policy
    builtin: Annotated[
        str,
        TextRule(
            r"^[a-z][a-z0-9_]{0,63}$",
            "must be 1 to 64 lowercase letters, digits or _, starting with a letter, "
            "such as end_call",
        ),
    ]
    parameters: JsonSchemaObject
    config: JsonObject | None = None


Tool = Annotated[HttpTool | BuiltinTool, Field(discriminator="type")]
Returns = Annotated[
    dict[ReturnName, Literal["string", "number", "boolean"]],
    Field(max_length=MAX_RETURNS, json_schema_extra=_ONLY_PATTERN_KEYS),
]


def _unique_tool_names(tools: list[HttpTool | BuiltinTool] | None) -> Any:
    if tools is None:
        return None
    names = [tool.name for tool in tools]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ValueError(f"tool names must be unique within an agent; {duplicate} appears twice")
    return tools


Tools = Annotated[list[Tool], Field(max_length=MAX_TOOLS), AfterValidator(_unique_tool_names)]


def _without_null(schema: dict[str, Any]) -> None:
    """Drop the null branch from a field's JSON schema (see AgentUpdate)."""
    branches = [branch for branch in schema.pop("anyOf", []) if branch.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null")
    return value


class AgentFields(RequestModel):
    """The writable configuration of an agent, shared by create and update."""

    # What other voice-agent APIs call these fields: an unknown field suggests ours.
    field_hints: ClassVar[dict[str, str]] = {
        "prompt": "instructions",
        "system_prompt": "instructions",
        "voice_id": "voice",
        "locale": "language",
        "webhook": "webhook_url",
        "numbers": "number_ids",
        "phone_number_ids": "number_ids",
    }

    persona: LongText | None = Field(
        default=None, description="Who the agent is; null means the default persona."
    )
    instructions: LongText | None = Field(default=None, description="Default task for calls.")
    voice: Voice | None = Field(default=None, description="TTS voice id.")
    language: Language | None = Field(default=None, description="BCP-47 tag.", examples=["en-US"])
    returns: Returns | None = Field(
        default=None,
        description="Fields to extract after a call: name to string, number or boolean.",
        examples=[{"confirmed": "boolean", "reschedule_to": "string"}],
    )
    tools: Tools | None = Field(default=None, description="At most 16 in-call tools.")
    webhook_url: Url | None = Field(default=None, description="Absolute http(s) URL.")


class AgentCreate(AgentFields):
    model_config = ConfigDict(json_schema_extra={"examples": [AGENT_CREATE_EXAMPLE]})

    name: Name = Field(examples=["Appointment reminders"])
    type: AgentType
    voicemail_action: VoicemailAction = "hangup"
    number_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=100,
        description="Numbers to attach, in order.",
        json_schema_extra={"uniqueItems": True},
    )
    primary_number_id: uuid.UUID | None = Field(
        default=None, description="One of number_ids; defaults to the first of them."
    )

    @field_validator("number_ids")
    @classmethod
    def _no_duplicates(cls, value: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not contain duplicates")
        return value

    @model_validator(mode="after")
    def _primary_among_numbers(self) -> AgentCreate:
        if self.primary_number_id is not None and self.primary_number_id not in (
            self.number_ids or []
        ):
            raise ValueError("primary_number_id must be one of number_ids")
        return self


READ_ONLY_FIELDS = (
    "id",
    "org_id",
    "user_id",
    "type",
    "number_ids",
    "numbers",
    "archived_at",
    "created_at",
    "updated_at",
)


class AgentUpdate(AgentFields):
    """Only the fields present change; an explicit null clears a nullable field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"instructions": _INSTRUCTIONS_EXAMPLE, "voicemail_action": "hangup"}]
        }
    )

    # Not nullable: None only stands for "absent", so the schema does not offer null.
    name: Annotated[Name | None, BeforeValidator(_not_null)] = Field(
        default=None, json_schema_extra=_without_null
    )
    voicemail_action: Annotated[VoicemailAction | None, BeforeValidator(_not_null)] = Field(
        default=None, json_schema_extra=_without_null
    )
    primary_number_id: uuid.UUID | None = Field(
        default=None, description="An attached number, or null to clear."
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in READ_ONLY_FIELDS:
                if name in data:
                    raise ValueError(f"{name} is read-only and cannot be updated")
        return data


class AttachNumber(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"number_id": NUMBER_ID_EXAMPLE, "set_as_primary": True}]}
    )

    number_id: uuid.UUID
    set_as_primary: StrictBool = False


class SetPrimaryNumber(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"number_id": NUMBER_ID_EXAMPLE}]})

    number_id: uuid.UUID


class AgentListQuery(PageQuery):
    type: AgentType | None = None
    include_archived: bool = False


class Agent(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [AGENT_EXAMPLE]})

    id: uuid.UUID
    org_id: uuid.UUID
    user_id: str = Field(description="Id of the API key that created the agent.")
    name: str
    type: AgentType
    persona: str | None
    instructions: str | None
    voice: str | None
    language: str | None
    returns: dict[str, str] | None
    tools: list[dict[str, Any]] | None
    webhook_url: str | None
    voicemail_action: VoicemailAction
    primary_number_id: uuid.UUID | None
    archived_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    numbers: list[Number] = Field(description="Every attached number, in attach order.")
