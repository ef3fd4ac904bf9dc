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
from contextlib import nullcontext
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
_access_logger = logging.getLogger(ACCESS_LOGGER)


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn passes a copy of its message with terminal colours as an `extra`.
    event_dict.pop("color_message", None)
    return event_dict


def _leading_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # When, how bad and what first: JSON keys keep the order they are written in.
    first = {key: event_dict.pop(key) for key in _FIRST if key in event_dict}
    return {**first, **event_dict}


_FIRST = ("timestamp", "level", "event", "logger")


def _renderers(log_format: LogFormat) -> list[Any]:
    """What turns an event into its line: the last processors of every line."""
    if log_format == "json":
        return [
            structlog.processors.format_exc_info,
            _leading_keys,
            structlog.processors.JSONRenderer(),
        ]
    # Plain tracebacks: rich (when installed) would print every frame's locals, which is
    # slow on deep stacks and could put a caller's secrets into the log.
    return [
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    ]


def formatter(log_format: LogFormat) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderers(log_format),
        ],
    )


class _AccessLine:
    """The request line written straight to the one handler, through the same processors as
    every other line: the standard library's logger, record and formatter around it cost more
    than the line itself (a fifth of a small request's CPU at info level)."""

    def __init__(self, handler: logging.StreamHandler[Any], log_format: LogFormat) -> None:
        self.handler = handler
        self.processors = [*_SHARED[:2], _add_access_logger, *_SHARED[3:], *_renderers(log_format)]

    def write(self, event_dict: EventDict) -> bool:
        """Whether the line was written here (else it goes the standard library's way)."""
        handlers = logging.root.handlers
        if len(handlers) != 1 or handlers[0] is not self.handler:
            return False  # someone (a test) rerouted the logs: theirs to format
        line: Any = event_dict
        for processor in self.processors:
            line = processor(None, "info", line)
        with self.handler.lock or nullcontext():
            self.handler.stream.write(line + "\n")
            self.handler.flush()
        return True


def _add_access_logger(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["logger"] = ACCESS_LOGGER
    return event_dict


_access_line: _AccessLine | None = None


def configure_logging(level: LogLevel, log_format: LogFormat) -> None:
    """Route every logger of this process to one stderr handler, in ``log_format``."""
    global _access_line
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    _access_line = _AccessLine(handler, log_format)
    for name in ("uvicorn", "uvicorn.error"):
        # uvicorn's own handlers would print its lines a second time, in its own format.
        # (uvicorn.access is left as `access_log=False` set it: silent, in favour of ours.)
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def log_request(
    method: str, route: str, status: int, seconds: float, org_id: uuid.UUID | None
) -> None:
    """The one line per request (the request id comes from the bound context)."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "event": "request",
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "org_id": str(org_id) if org_id is not None else None,
    }
    if _access_line is None or not _access_line.write(fields):
        access_log.info(fields.pop("event"), **fields)


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
