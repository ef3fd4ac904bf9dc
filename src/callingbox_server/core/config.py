"""Settings, read from the environment (prefix ``CALLINGBOX_``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    serve_runs_worker: bool = Field(
        default=True,
        description="Run the background worker inside serve; false when workers run apart.",
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


def to_asyncpg_url(url: str) -> str:
    """Accept the usual ``postgres://`` spellings and return SQLAlchemy's asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("CALLINGBOX_DATABASE_URL must start with postgresql://")


@lru_cache
def get_settings() -> Settings:
    return Settings()
