"""Settings, read from the environment (prefix ``CALLINGBOX_``) and an optional ``.env`` file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

import annotated_types
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CALLINGBOX_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/db; unset means the embedded server.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    data_dir: Path = Path(".callingbox")
    log_level: LogLevel = "info"
    log_format: LogFormat = Field(
        default="text", description="text for people, json (one object a line) for log pipelines."
    )
    metrics_enabled: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    key_hash_secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret for API key hashes; required with an external database.",
    )
    numbers_provider: Literal["sandbox"] = "sandbox"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # No overflow: connections opened and closed again under bursts cost more than waiting for
    # one of the pool (measured with make bench: GET agent at 32 connections, 0.40 -> 0.48 of
    # the baseline); a wait longer than db_pool_timeout is a 503.
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    # Together these bound how long a request waits on a database that does not answer (503 after):
    # a pool slot (pool), then a new connection (connect), or one statement (command).
    db_connect_timeout: float = Field(default=0.75, gt=0)
    db_pool_timeout: float = Field(default=0.5, gt=0)
    db_command_timeout: float = Field(default=1.25, gt=0)
    # On SIGTERM, requests in progress get this long to finish before they are cancelled.
    shutdown_timeout: int = Field(default=8, ge=1, le=3600)
    # Bounds on the request head, checked by serve's HTTP protocol before the app sees anything:
    # the request target (414), the header fields' bytes and count (431), and how long the
    # whole head may take to arrive (408, then the connection is closed).
    max_url_bytes: int = Field(default=8192, ge=256, le=1_048_576)
    max_header_bytes: int = Field(default=32_768, ge=1024, le=1_048_576)
    max_header_count: int = Field(default=100, ge=8, le=10_000)
    header_timeout: float = Field(default=10.0, gt=0, le=3600)
    # How long an idle kept-alive connection stays open. Longer than clients keep theirs (httpx
    # and the official client: 5 s, uvicorn's own default too), so the client always drops it
    # first: a server closing at the moment a client reuses it resets that request.
    keep_alive_timeout: int = Field(default=75, ge=1, le=3600)
    max_query_parameters: int = Field(default=100, ge=1, le=100_000)
    # Fair sharing between orgs, per server process: requests per second (0: unlimited), and
    # requests at once (unset: half the pool), beyond which an org's requests wait for one of
    # its own to finish, at most org_queue_timeout seconds (then 429).
    org_rate_limit: int = Field(default=3000, ge=0)
    org_max_concurrent_requests: int | None = Field(default=None, ge=1, le=200)
    org_queue_timeout: float = Field(default=5.0, gt=0, le=300)
    serve_runs_worker: bool = Field(
        default=True,
        description="Run the background worker inside serve; false when workers run apart.",
    )
    carrier: Literal["sandbox"] = Field(
        default="sandbox", description="Who places calls: sandbox plays them out with no network."
    )
    sandbox_ring_seconds: float = Field(
        default=1.0, ge=0, le=3600, description="How long a sandbox call rings before its outcome."
    )
    sandbox_talk_seconds: float = Field(
        default=2.0, ge=0, le=3600, description="How long an answered sandbox call talks."
    )
    test_helpers: bool = Field(
        default=True,
        description="Serve /v1/test_helpers (sandbox carrier only); false turns them off.",
    )
    worker_poll_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between the worker's looks for due work when no NOTIFY woke it.",
    )
    worker_pool_size: int = Field(
        default=4,
        ge=1,
        le=100,
        description="Database connections of each kind of due work (calls, webhooks) per process.",
    )
    # Webhooks: every retry delay is multiplied by the scale (tests run the schedule in
    # seconds); private destinations are allowed by default only on the embedded database.
    webhook_retry_scale: float = Field(default=1.0, ge=0, le=1)
    webhook_allow_private: bool | None = Field(
        default=None,
        description="Send webhooks to private addresses; unset: only on the embedded database.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalize_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return to_asyncpg_url(value.strip())

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def webhooks_allow_private(self) -> bool:
        """Whether webhooks may go to private addresses: as set, else on the embedded database."""
        if self.webhook_allow_private is not None:
            return self.webhook_allow_private
        return self.embedded

    @property
    def org_concurrency(self) -> int:
        """Requests of one org at once: as set, else half the pool (so others always find room)."""
        if self.org_max_concurrent_requests is not None:
            return self.org_max_concurrent_requests
        return max(1, self.db_pool_size // 2)


def to_asyncpg_url(url: str) -> str:
    """Accept the usual ``postgres://`` spellings and return SQLAlchemy's asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("must start with postgresql:// (or postgres://)")


@lru_cache
def get_settings() -> Settings:
    return Settings()


ENV_PREFIX = "CALLINGBOX_"
# Never echoed back in an error: a URL may carry a password, and the secret is one.
_SECRET_SETTINGS = frozenset({"database_url", "key_hash_secret"})
# Where a default makes a poor example (or there is none).
_EXAMPLES = {
    "database_url": "postgresql://callingbox:password@db.example.com:5432/callingbox",
    "key_hash_secret": "<48 random characters, from: python3 -c 'import secrets; "
    "print(secrets.token_urlsafe(48))'>",
    "workers": "4",
    "log_level": "warning",
    "log_format": "json",
    "metrics_enabled": "false",
    "org_max_concurrent_requests": "20",
    "webhook_allow_private": "true",
}


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def setting_source(field: str) -> str:
    """Where a set setting came from, in the words of its fix: the environment wins over .env."""
    name = env_name(field)
    return "the environment" if any(key.upper() == name for key in os.environ) else "./.env"


def describe_settings_error(error: ValidationError) -> list[str]:
    """One line per bad setting: the variable, what its value must be, and an example."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        info = Settings.model_fields.get(field)
        if info is None:  # not one of ours: say what pydantic said, without its links
            lines.append(f"{'.'.join(map(str, item['loc']))}: {item['msg']}")
            continue
        name = env_name(field)
        shown = name if field in _SECRET_SETTINGS else f"{name}={item['input']!r}"
        example = _EXAMPLES.get(field, str(info.default))  # every None default has one
        lines.append(
            f"{shown} (in {setting_source(field)}): {_allowed(info, item)}, "
            f"for example {name}={example}"
        )
    return lines


def _allowed(info: FieldInfo, item: Any) -> str:
    kind: str = item["type"]
    if kind == "value_error":  # our own validators word their rule
        return str(item["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        choices = [str(choice) for choice in get_args(info.annotation)]
        return "must be " + (choices[0] if len(choices) == 1 else "one of " + ", ".join(choices))
    if kind.startswith("bool"):
        return "must be true or false"
    bounds = {
        name: getattr(rule, name)
        for rule in info.metadata
        for name in ("ge", "gt", "le")
        if isinstance(rule, getattr(annotated_types, name.capitalize()))
    }
    # The type, without the None of a setting that may be left unset.
    kinds = set(get_args(info.annotation) or (info.annotation,)) - {type(None)}
    number = "a whole number" if kinds == {int} else "a number"
    if "ge" in bounds and "le" in bounds:
        return f"must be {number} from {bounds['ge']} to {bounds['le']}"
    if "ge" in bounds:
        return f"must be {number}, at least {bounds['ge']}"
    if "gt" in bounds:
        return f"must be {number} greater than {bounds['gt']}"
    if kinds in ({int}, {float}):
        return f"must be {number}"
    return "is not valid"
