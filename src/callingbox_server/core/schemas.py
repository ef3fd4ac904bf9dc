"""What every resource's request and response models build on."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic_core import PydanticCustomError


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# RFC 3339, UTC, always with microseconds and a Z: "2026-11-28T12:00:00.123456Z".
Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class RequestModel(BaseModel):
    """Base of every request body and query model: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


_DECIMAL = re.compile(r"-?[0-9]{1,18}")


def _decimal_text(value: object) -> object:
    # Python's int() (and so pydantic) also reads "1_0", "+5", " 5" and "5.0": not in a URL.
    # Refused as pydantic refuses "abc", in the same words.
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    return value


# An integer query parameter: plain decimal digits, optionally signed with "-".
QueryInt = Annotated[int, BeforeValidator(_decimal_text)]
