"""Structured logs (structlog over the standard library): text for people, JSON for pipelines.

Everything goes through one stderr handler, ours and uvicorn's and SQLAlchemy's records alike, so
that a pipeline reading JSON never meets a line it cannot parse. Lines written while a request is
handled carry its ``request_id``.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any
from urllib.parse import unquote

import structlog
from structlog.typing import EventDict, WrappedLogger

from callingbox_server.core.config import LogFormat, LogLevel

ACCESS_LOGGER = "callingbox_server.access"

# What every line gets, whether it was written through structlog or the standard library.
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        *_SHARED,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)

access_log: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(ACCESS_LOGGER)


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes a copy of its message with terminal colours as an `extra`.
    event_dict.pop("color_message", None)
    return event_dict


def _leading_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # When, how bad and what first: JSON keys keep the order they are written in.
    first = {key: event_dict.pop(key) for key in _FIRST if key in event_dict}
    return {**first, **event_dict}


_FIRST = ("timestamp", "level", "event", "logger")


def formatter(log_format: LogFormat) -> logging.Formatter:
    renderer: Any
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
        last = [structlog.processors.format_exc_info, _leading_keys, renderer]
    else:
        # Plain tracebacks: rich (when installed) would print every frame's locals, which is
        # slow on deep stacks and could put a caller's secrets into the log.
        console = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
        last = [console]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *last],
    )


def configure_logging(level: LogLevel, log_format: LogFormat) -> None:
    """Route every logger of this process to one stderr handler, in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own handlers would print its lines a second time, in its own format.
        # (uvicorn.access is left as `access_log=False` set it: silent, in favour of ours.)
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def log_request(
    method: str, route: str, status: int, seconds: float, org_id: uuid.UUID | None
) -> None:
    """The one line per request (the request id comes from the bound context)."""
    access_log.info(
        "request",
        method=method,
        route=route,
        status=status,
        duration_ms=round(seconds * 1000, 3),
        org_id=str(org_id) if org_id is not None else None,
    )


# Anything shaped like an API key, wherever a caller put it (a query string, a path): uvicorn's
# access log writes the request line as received, and a key there must not reach the logs.
_SECRET = re.compile(r"sk_(live|test)_[A-Za-z0-9_\-]+")
_REDACTED = r"sk_\1_[redacted]"
_LOGGERS_TO_REDACT = ("uvicorn", "uvicorn.access", "uvicorn.error", "callingbox_server")


def _redact(value: object) -> object:
    if not isinstance(value, str):
        return value
    if _SECRET.search(value):
        return _SECRET.sub(_REDACTED, value)
    decoded = unquote(value)  # a percent-encoded key is still a key
    return _SECRET.sub(_REDACTED, decoded) if _SECRET.search(decoded) else value


class RedactSecrets(logging.Filter):
    """Masks API keys in log records (message and arguments, which formatters use separately)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def install_log_redaction() -> None:
    for name in _LOGGERS_TO_REDACT:
        target = logging.getLogger(name)
        if not any(isinstance(existing, RedactSecrets) for existing in target.filters):
            target.addFilter(RedactSecrets())
