"""Wire shapes of numbers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from callingbox_server.core.pagination import PageQuery
from callingbox_server.core.schemas import QueryInt, RequestModel, Timestamp
from callingbox_server.core.text import TextRule

NumberType = Literal["local", "toll_free"]

# OpenAPI examples, in the shapes of the CallingBox API reference, with sandbox numbers.
NUMBER_ID_EXAMPLE = "6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
AGENT_ID_EXAMPLE = "0b9e6c1a-5d3f-4c27-9a8e-1f2b3c4d5e6f"
TIMESTAMP_EXAMPLE = "2026-11-28T12:00:00.123456Z"
NUMBER_EXAMPLE: JsonDict = {
    "id": NUMBER_ID_EXAMPLE,
    "e164": "+14155550100",
    "friendly_name": "(415) 555-0100",
    "country_code": "US",
    "number_type": "local",
    "status": "active",
    "monthly_cost_cents": 100,
    "purchased_at": TIMESTAMP_EXAMPLE,
    "inbound_agent_id": None,
    "outbound_agent_ids": [AGENT_ID_EXAMPLE],
}
AVAILABLE_NUMBER_EXAMPLE: JsonDict = {
    "phone_number": "+14155550100",
    "country_code": "US",
    "number_type": "local",
    "state": "CA",
    "locality": "San Francisco",
    "monthly_cost_cents": 100,
    "upfront_cost_cents": 0,
    "currency": "USD",
}


class Number(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [NUMBER_EXAMPLE]}
    )

    id: uuid.UUID
    e164: str = Field(examples=["+14155550100"])
    friendly_name: str | None = Field(examples=["(415) 555-0100"])
    country_code: str = Field(examples=["US"])
    number_type: NumberType
    status: Literal["active", "released"]
    monthly_cost_cents: int = Field(examples=[100])
    purchased_at: Timestamp
    inbound_agent_id: uuid.UUID | None = Field(
        description="The one inbound agent that answers this number."
    )
    outbound_agent_ids: list[uuid.UUID] = Field(
        description="Outbound agents that may use this number as caller ID, in attach order."
    )


class AvailableNumber(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [AVAILABLE_NUMBER_EXAMPLE]}
    )

    phone_number: str = Field(examples=["+14155550100"])
    country_code: str = Field(examples=["US"])
    number_type: NumberType
    state: str | None = Field(examples=["CA"])
    locality: str | None = Field(examples=["San Francisco"])
    monthly_cost_cents: int = Field(examples=[100])
    upfront_cost_cents: int = Field(examples=[0])
    currency: str = Field(examples=["USD"])


class AvailableNumbers(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [AVAILABLE_NUMBER_EXAMPLE]}]}
    )

    data: list[AvailableNumber]


class NumberListQuery(PageQuery):
    status: Literal["active", "released"] = "active"


# The service refuses N11 codes with a message of its own; the document states both rules.
AreaCode = Annotated[
    str,
    TextRule(
        r"^[2-9][0-9]{2}$",
        "must be a three-digit area code such as 415",
        published=r"^[2-9](?:[02-9][0-9]|1[02-9])$",
    ),
]


class AvailableQuery(RequestModel):
    country_code: Literal["US"] = Field(default="US", description="Only US numbers are offered.")
    area_code: AreaCode | None = Field(
        default=None, description="Three-digit area code; not an N11 service code (211 ... 911)."
    )
    number_type: NumberType | None = None
    limit: QueryInt = Field(default=10, ge=1, le=50)


E164 = Annotated[
    str, TextRule(r"^\+[1-9][0-9]{1,14}$", "must be an E.164 number such as +14155550100")
]


class PurchaseRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"phone_number": "+14155550100"}]})

    phone_number: E164 = Field(
        description="The number to buy, in E.164 form.", examples=["+14155550100"]
    )
