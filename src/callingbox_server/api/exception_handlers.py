"""Every failure rendered as one JSON error body: ``{"error", "code", "request_id"}``."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from callingbox_server.api.middleware import request_id_of
from callingbox_server.core.errors import (
    ApiError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)

logger = logging.getLogger("callingbox_server")


def error_response(request_id: str, error: ApiError) -> JSONResponse:
    body = {"error": error.message, "code": error.code, "request_id": request_id}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


def describe_validation_error(
    errors: Sequence[Any], body: Any = None, model: type[BaseModel] | None = None
) -> str:
    """One sentence about the first offending field, in the API's words rather than pydantic's:
    the field first, then what it must be (with an example where a format is involved).

    ``body`` is the request body as sent, to name fields by the path the caller wrote (pydantic
    adds a union member's tag to it); ``model`` is the body's model, whose fields and
    ``field_hints`` suggest what an unknown field may have meant.
    """
    if not errors:
        return "invalid request"
    first = errors[0]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "request body is not valid JSON"
    loc = list(first.get("loc", ()))
    source = str(loc[0]) if loc else "body"
    key = None
    if loc and loc[-1] == "[key]":  # a dict key that breaks its rule: name the dict, then it
        key, loc = loc[-2], loc[:-2]
    parts = _caller_path(loc[1:], body if source == "body" else None)
    field = ".".join(parts)
    allowed = _allowed(kind, first.get("ctx") or {}, str(first.get("msg", "")))
    if source == "body" and not field:
        if kind == "missing":
            return "request body is required"
        if kind == "value_error":  # a rule across fields, whose message names them
            return allowed
        return "request body must be a JSON object"
    noun = _NOUNS.get(source, "field")
    if kind == "missing":
        return f"missing required {noun}: {field}"
    if kind == "extra_forbidden":
        hint = _suggestion(parts[0], model) if source == "body" and len(parts) == 1 else None
        return f"unknown {noun}: {field}" + (f" (did you mean {hint}?)" if hint else "")
    if kind == "union_tag_not_found":
        return f"missing required {noun}: {field}.{_tag_name(first)}"
    if kind == "union_tag_invalid":
        return f"invalid {noun} {field}.{_tag_name(first)}: {allowed}"
    if key is not None:
        return f"invalid {noun} {field}: key {key!r} {allowed}"
    return f"invalid {noun} {field}: {allowed}"


_NOUNS = {"query": "query parameter", "header": "header", "path": "path parameter"}


def _caller_path(parts: Sequence[Any], body: Any) -> list[str]:
    """The field's path as the caller wrote it: ``tools.0.url``, where pydantic reports
    ``tools.0.http.url`` (the tag of the union member it tried)."""
    path, node = [], body
    for index, part in enumerate(parts):
        after = parts[index + 1] if index + 1 < len(parts) else _MISSING
        # The tag is the value of the object's discriminator, and a field of the object itself
        # follows it (a builtin tool has a field "builtin" too, but that one holds no fields).
        if (
            isinstance(node, dict)
            and part in node.values()
            and after is not _MISSING
            and _child(node.get(part, _MISSING), after) is _MISSING
        ):
            continue
        path.append(str(part))
        node = _child(node, part)
    return path


_MISSING = object()


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _MISSING


def _tag_name(error: Any) -> str:
    return str((error.get("ctx") or {}).get("discriminator", "type")).strip("'")


def _choices(expected: str) -> str:
    """pydantic's "'a', 'b' or 'c'" as "one of a, b or c"."""
    values: list[str] = re.findall(r"'([^']*)'", expected) or [expected]
    if len(values) == 1:
        return values[0]
    listed = f"{', '.join(values[:-1])} or {values[-1]}"
    return listed if len(values) == 2 else f"one of {listed}"


def _plural(count: int, noun: str, nouns: str = "") -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _allowed(kind: str, ctx: Mapping[str, Any], message: str) -> str:
    """What the value must be, for an error pydantic found."""
    if kind == "value_error":  # our own rules, worded where they are checked
        return message.removeprefix("Value error, ")
    if kind in ("literal_error", "enum", "union_tag_invalid"):
        return f"must be {_choices(str(ctx.get('expected') or ctx.get('expected_tags', '')))}"
    if kind in ("uuid_parsing", "uuid_type"):
        return "must be an id (a UUID)"
    if kind == "string_too_long":
        return f"must be at most {_plural(ctx['max_length'], 'character')}"
    if kind == "string_too_short":
        if ctx["min_length"] == 1:
            return "must not be empty"
        return f"must be at least {_plural(ctx['min_length'], 'character')}"
    if kind in ("too_long", "too_short"):
        nouns = ("entry", "entries") if ctx.get("field_type") == "Dictionary" else ("item",)
        bound = ctx["max_length"] if kind == "too_long" else ctx["min_length"]
        return f"must have at {'most' if kind == 'too_long' else 'least'} {_plural(bound, *nouns)}"
    for prefix, allowed in _TYPES.items():
        if kind.startswith(prefix):
            return allowed
    for bound, wording in _BOUNDS.items():
        if bound in ctx:
            return f"{wording} {ctx[bound]}"
    # Every pattern of ours is a TextRule with a message: this one names no format.
    if kind == "string_pattern_mismatch":
        return "is not in the expected format"
    return message.replace("Input should be", "must be").replace("Input should", "must")


_TYPES = {
    "string_": "must be a string",
    "int_": "must be a whole number",
    "float_": "must be a number",
    "finite_number": "must be a finite number",
    "bool_": "must be true or false",
    "dict_": "must be a JSON object",
    "model_": "must be a JSON object",
    "list_": "must be a JSON array",
}
_BOUNDS = {
    "ge": "must be at least",
    "gt": "must be greater than",
    "le": "must be at most",
    "lt": "must be less than",
}


def _suggestion(name: str, model: type[BaseModel] | None) -> str | None:
    """The field an unknown one probably meant: a known synonym, or a near spelling."""
    if model is None:
        return None
    hints: Mapping[str, str] = getattr(model, "field_hints", {})
    if name in hints:
        return str(hints[name])
    close = difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.75)
    return close[0] if close else None


def _body_model(request: Request) -> type[BaseModel] | None:
    """The model the route validates its body with, if it has one."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    annotation = getattr(getattr(field, "field_info", None), "annotation", None)
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on this path (Starlette names only the first route's)."""
    routes = request.app.router.routes

    def served(method: str) -> bool:
        scope = {**request.scope, "method": "GET" if method == "HEAD" else method}
        return any(route.matches(scope)[0] is Match.FULL for route in routes)

    return [method for method in _METHODS if served(method)]


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(request_id_of(request), exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message = describe_validation_error(exc.errors(), exc.body, _body_model(request))
        return error_response(request_id_of(request), InvalidRequest(message))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        error: ApiError
        if exc.status_code == 404:
            error = NotFound(f"no route for {request.method} {request.url.path}")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"method {request.method} not allowed on {request.url.path}")
            headers["Allow"] = ", ".join(_allowed_methods(request))
        elif exc.status_code == 413:
            error = PayloadTooLarge("request body is too large")
        elif exc.status_code == 400:
            # FastAPI wraps what reading the body raised (our own checks among it) in a 400.
            cause = exc.__cause__
            if isinstance(cause, ApiError):
                error = cause
            elif isinstance(cause, UnicodeDecodeError):
                error = InvalidRequest("request body must be JSON encoded as UTF-8")
            else:
                error = InvalidRequest("request body could not be read")
        else:
            logger.error("unexpected HTTP exception %s: %s", exc.status_code, exc.detail)
            error = ApiError("internal error")
        error.headers.update(headers)
        return error_response(request_id_of(request), error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
