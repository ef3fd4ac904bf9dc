"""Direct routes: the hottest read answered without the framework's per-request work.

For every request FastAPI solves its route's dependencies (an exit stack, a scope check and a
cache key per dependency) and the session dependency opens and commits a session around a read
that needs neither: on ``GET /v1/agents/{id}`` that was over half the server's CPU (the profile
in bench/RESULTS.md). A direct route serves its route's common case by calling the same pieces
in a straight line: the bearer key and its digest and the path id (``api.dependencies``), the
org's fair share, the domain's service function on a pooled connection, the response
``api.responses`` builds, errors as the exception handlers render them. Any other case goes on to
the FastAPI route it stands for, which stays the route's one description (the OpenAPI document,
validation, every other error): a query string to check, or a key whose org this process has
not met yet.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from callingbox_server.api.dependencies import bearer_scheme, key_digest
from callingbox_server.api.exception_handlers import error_response
from callingbox_server.core.db.driver import Reads, reading_connection
from callingbox_server.core.errors import ApiError
from callingbox_server.core.principal import Caller, known_orgs

# What a direct route does once its caller has a slot: read on the connection given, respond.
# A router declares its direct answers by route name (``DIRECT``, beside the routes): GETs with
# no query string, by a key of an org this process has met.
Answer = Callable[[Reads, Caller, dict[str, Any]], Awaitable[Response]]


async def _nothing_to_give_back() -> None:
    """Fair sharing's ``before_waiting``: a direct route takes its connection after its slot."""


@dataclass(frozen=True, slots=True)
class _Direct:
    route: APIRoute
    answer: Answer


class DirectRoutes:
    """The layer inside ``RequestContextMiddleware`` (request id, limits, outages, the access
    line) that answers the routes each router names in its direct answers."""

    def __init__(self, app: ASGIApp, routers: list[tuple[APIRouter, dict[str, Answer]]]) -> None:
        self.app = app
        self.routes = []
        for router, answers in routers:
            declared = {r.name: r for r in router.routes if isinstance(r, APIRoute)}
            self.routes += [_Direct(declared[name], answer) for name, answer in answers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            for direct in self.routes:
                match, child_scope = direct.route.matches(scope)
                if match is Match.FULL:
                    response = await self._answer(scope, direct, child_scope)
                    if response is not None:
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, direct: _Direct, child_scope: Scope) -> Response | None:
        request = Request(scope)
        state = request.app.state
        try:
            digest = key_digest(state.key_hash_secret, await bearer_scheme(request))
            org_id = known_orgs.get(digest)
            if org_id is None:
                return None
            # What the middleware reads once the response has gone: the route for the metrics
            # and the access line, the org for that line and the slot to hand on.
            scope.update(child_scope)
            scope["state"]["org_id"] = org_id
            await state.fair_share.acquire(org_id, _nothing_to_give_back)
            scope["state"]["fair_share_org"] = org_id
            async with reading_connection(state.sessionmaker) as connection:
                return await direct.answer(connection, Caller(digest), child_scope["path_params"])
        except ApiError as error:
            return error_response(scope["state"]["request_id"], error)
