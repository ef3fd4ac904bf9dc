"""What every resource's request and response models build on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# RFC 3339, UTC, always with microseconds and a Z: "2026-11-28T12:00:00.123456Z".
Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]


class RequestModel(BaseModel):
    """Base of every request body and query model: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")
