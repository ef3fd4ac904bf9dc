"""What routes depend on: the session, the caller, path ids, If-Match, and request checks."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callingbox_server.api.openapi import optional_header
from callingbox_server.core.errors import (
    InvalidRequest,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
)
from callingbox_server.core.preconditions import IF_MATCH_PATTERN, IfMatch
from callingbox_server.core.principal import Caller, Principal, known_orgs
from callingbox_server.domains.keys import repository as keys_repository
from callingbox_server.domains.keys.service import hash_key


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commit when the endpoint returns, roll back when it raises; both before the response."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


_KEY_SHAPE = re.compile(r"sk_(?:live|test)_[A-Za-z0-9_\-]{32,128}")

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key (`sk_live_...` or `sk_test_...`) as `Authorization: Bearer <key>`.",
)


def key_digest(secret: bytes, credentials: HTTPAuthorizationCredentials | None) -> bytes:
    """The HMAC of the caller's key, the key's one identity here; a key not even shaped like
    one is refused before any lookup."""
    # Every failure raises the same error: callers learn nothing about why a key was refused.
    # The lookup is by HMAC through a unique index, so no comparison ever runs on the secret.
    if credentials is None or not _KEY_SHAPE.fullmatch(credentials.credentials):
        raise Unauthorized()
    return hash_key(secret, credentials.credentials)


async def identify(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The caller, with its org's share of requests taken. A key whose org this process has
    seen is checked by the read itself, in the same statement (``Caller.principal`` is None);
    any other key is checked here first."""
    digest = key_digest(request.app.state.key_hash_secret, credentials)
    principal = None
    org_id = known_orgs.get(digest)
    if org_id is None:
        principal = await _find_principal(session, digest)
        org_id = principal.org_id
    request.state.org_id = org_id  # for the request's log line
    # The org's share of requests at once; waiting for it gives the connection back first,
    # and the middleware hands the slot on when the response has gone out.
    await request.app.state.fair_share.acquire(org_id, session.commit)
    request.state.fair_share_org = org_id
    return Caller(digest, principal)


async def _find_principal(session: AsyncSession, digest: bytes) -> Principal:
    found = await keys_repository.find_usable(session, digest)
    if found is None:
        raise Unauthorized()
    key_id, org_id, mode = found
    return Principal(key_id=key_id, org_id=org_id, mode=mode)


CallerDep = Annotated[Caller, Depends(identify)]


async def authenticate(session: SessionDep, caller: CallerDep) -> Principal:
    """The caller, its key checked (now, unless ``identify`` had to)."""
    if caller.principal is not None:
        return caller.principal
    return await _find_principal(session, caller.key_hash)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def parse_id(raw: str, noun: str) -> uuid.UUID:
    """A path id that is not a UUID names nothing that exists: 404, like any missing object."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"{noun} {raw} not found") from None


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description="Apply the change only if the object's ETag is still this one (else 412).",
        ),
        optional_header(IF_MATCH_PATTERN, examples=['"3f0a4cbe5f1d2e7a9b6c8d0e1f2a3b4c"']),
    ] = None,
) -> IfMatch | None:
    return None if if_match is None else IfMatch.parse(if_match)


IfMatchDep = Annotated[IfMatch | None, Depends(_if_match)]


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def check_query_parameters(request: Request) -> None:
    """Repeated and unknown query parameters are 400; most requests have none to check."""
    if request.scope["query_string"]:
        _reject_repeated_query_parameters(request)
        _reject_unknown_query_parameters(request)


def _reject_repeated_query_parameters(request: Request) -> None:
    """``?limit=1&limit=2`` is ambiguous: say so rather than silently pick one."""
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen:
            raise InvalidRequest(f"query parameter {name} is given more than once")
        seen.add(name)


async def require_json(request: Request) -> None:
    """A body, when there is one, must be JSON (checked after auth, before validation)."""
    if await request.body() and not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMediaType("request body must be sent as Content-Type: application/json")


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters a route reads: its own, and the fields of its query models."""
    names: set[str] = set()
    for param in dependant.query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names.update(field.alias or name for name, field in model.model_fields.items())
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


_KNOWN = "callingbox_query_names"  # kept on the route, computed on its first request


def _reject_unknown_query_parameters(request: Request) -> None:
    """Unknown names are 400 here, one look-up each: a query model would report every one
    of 10,000 unknown names as its own validation error."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known: frozenset[str] | None = getattr(route, _KNOWN, None)
    if known is None:
        known = _query_names(route.dependant)
        setattr(route, _KNOWN, known)
    for name in request.query_params:
        if name not in known:
            raise InvalidRequest(f"unknown query parameter: {name}")
