"""Schemathesis hooks for tests/api/test_schemathesis.py: the few rules OpenAPI cannot state.

Every check runs on every operation. A failure is dropped here only when it is one of the
contract's rules that depend on state or span fields, which no OpenAPI schema can express; each
rule below names the operation, the failure code, the status and the exact error message, so
anything else (another status, another message, another operation) still fails the run.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis

_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_BOTH_CURSORS = "starting_after and ending_before cannot be used together"
_TOOL_NAMES = r"invalid field tools: tool names must be unique within an agent; .* appears twice"
_LANGUAGE = "invalid field language: must be a BCP-47 language tag such as en, en-US or es-419"
_NOT_ATTACHED = rf"number {_ID} is not attached to agent {_ID}"
_NO_SUCH = r"invalid query parameter (starting_after|ending_before): no such"
# Free-form JSON (tool parameters and config, a call's context) must be storable: no NUL
# character in any key or string, no nesting deeper than 32 levels. Saying so in OpenAPI would
# take a recursive schema of every JSON value, which the document does not carry.
_JSON_CONTENT = (
    r"invalid field (tools\.[0-9]+\.(parameters|config)|context): "
    r"must not (contain NUL characters|nest deeper than 32 levels)"
)

_HTTPS = r"invalid field url: must be an https URL \(.*\)"

# ST202 "schema-valid request rejected": 400 answers the contract prescribes for valid-looking data.
_VALID_BUT_REFUSED: dict[str, re.Pattern[str]] = {
    # A cursor must name an object of the caller's collection, and only one may be given
    # (API.md 1.1).
    "GET /v1/agents": re.compile(rf"{_BOTH_CURSORS}|{_NO_SUCH} agent {_ID}"),
    "GET /v1/numbers": re.compile(rf"{_BOTH_CURSORS}|{_NO_SUCH} number {_ID}"),
    # primary_number_id must be one of number_ids; tool names are unique within an agent; the
    # language's subtags must be registered (the schema's pattern gives its syntax only).
    "POST /v1/agents": re.compile(
        f"primary_number_id must be one of number_ids|{_TOOL_NAMES}|{_LANGUAGE}|{_JSON_CONTENT}"
    ),
    # The primary number must be attached already (API.md rules 5 and 6).
    "PATCH /v1/agents/{id}": re.compile(
        f"{_NOT_ATTACHED}|{_TOOL_NAMES}|{_LANGUAGE}|{_JSON_CONTENT}"
    ),
    "PUT /v1/agents/{id}/primary-number": re.compile(_NOT_ATTACHED),
    # Calls: the fields of each way of dispatching, and what the agent or org must have
    # (API.md rules 11 and 12); the cursor rule as for every list.
    "GET /v1/calls": re.compile(rf"{_BOTH_CURSORS}|{_NO_SUCH} call {_ID}"),
    "POST /v1/calls": re.compile(
        "(language|returns|tools|voicemail_action) belongs to the agent and cannot be set per "
        "call when agent_id is given; change the agent instead"
        "|prompt is for calls without agent_id; with an agent, send instructions"
        "|instructions needs agent_id; a call without an agent takes prompt instead"
        "|invalid field language: must be en or es"
        f"|agent {_ID} is an inbound agent; calls are dispatched from outbound agents"
        f"|agent {_ID} is archived; calls need an agent that is not"
        f"|agent {_ID} has no primary number: attach a number to it, or give from_number"
        rf"|invalid field from_number: \+[0-9]+ is not attached to agent {_ID}"
        "|your organization has no active number to call from: .*"
        r"|invalid field from_number: \+[0-9]+ is not an active number of your organization"
        f"|{_TOOL_NAMES}|{_LANGUAGE}|{_JSON_CONTENT}"
    ),
    # The fields that go with the status asked for, and a result within the call's returns.
    "POST /v1/test_helpers/calls/{id}/advance": re.compile(
        r"\w+ can only be given with status .*|invalid field result(\.\w+)?: .*"
    ),
    # Only numbers the provider offers can be bought (API.md rule 9); E.164 is all a schema can say.
    "POST /v1/numbers/purchase": re.compile(
        r"phone number \+[0-9]+ is not offered by the provider"
    ),
    # Webhooks (API.md section 6): cursors as everywhere; an endpoint URL is https, or http to
    # a private address where those are allowed (a schema cannot resolve a host name); a
    # disabled or deleted endpoint's delivery is not sent again.
    "GET /v1/webhook_endpoints": re.compile(rf"{_BOTH_CURSORS}|{_NO_SUCH} webhook endpoint {_ID}"),
    "GET /v1/webhook_deliveries": re.compile(rf"{_BOTH_CURSORS}|{_NO_SUCH} webhook delivery {_ID}"),
    "GET /v1/webhook_deliveries/{id}/attempts": re.compile(
        rf"{_BOTH_CURSORS}|{_NO_SUCH} webhook attempt {_ID}"
    ),
    "POST /v1/webhook_endpoints": re.compile(_HTTPS),
    "PATCH /v1/webhook_endpoints/{id}": re.compile(_HTTPS),
    "POST /v1/webhook_deliveries/{id}/redeliver": re.compile(
        rf"webhook endpoint {_ID} (was deleted|is disabled): .*"
    ),
}


def _body(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refused_for_its_state(case: Any, status: int, body: dict[str, Any]) -> bool:
    """Well-formed preconditions that no longer hold: a generated ``If-Match`` is not the
    object's current ETag (412), a generated ``Idempotency-Key`` was used before with another
    request (422). Recognised by the header sent and the error code, on any operation."""
    headers = {name.lower() for name in (case.headers or {})}
    code = body.get("code")
    return (status == 412 and code == "precondition_failed" and "if-match" in headers) or (
        status == 422 and code == "idempotency_key_reused" and "idempotency-key" in headers
    )


def _sent_header_breaking_its_pattern(case: Any) -> bool:
    """Whether a header sent breaks the ``pattern`` its own parameter declares.

    Schemathesis's coverage phase builds header values from letters and digits only, so for
    ``If-Match`` (whose every valid value holds a ``"`` or a ``*``) it has no valid value and puts
    ``0`` in its "required and optional" cases, while still calling them schema-valid. Such a
    request is not schema-valid, so its 400 is right; the check is made against the served
    document's own pattern, so a real mismatch between server and schema still fails.
    """
    sent = {name.lower(): value for name, value in (case.headers or {}).items()}
    for parameter in case.operation.headers:
        pattern = parameter.definition.get("schema", {}).get("pattern")
        value = sent.get(parameter.name.lower())
        if isinstance(pattern, str) and isinstance(value, str) and not re.search(pattern, value):
            return True
    return False


def _is_contract_rule(failure: Any, case: Any, response: Any) -> bool:
    label = case.operation.label
    body = _body(response)
    if failure.code == "ST202":
        if _refused_for_its_state(case, response.status_code, body):
            return True
        if response.status_code == 400 and _sent_header_breaking_its_pattern(case):
            return True
        rule = _VALID_BUT_REFUSED.get(label)
        return (
            rule is not None
            and response.status_code == 400
            and body.get("code") == "invalid_request"
            and rule.fullmatch(str(body.get("error", ""))) is not None
        )
    if failure.code == "ST301":
        # Archive and release are soft by contract: the object stays readable, marked as such.
        if label == "GET /v1/agents/{id}":
            return response.status_code == 200 and body.get("archived_at") is not None
        if label == "GET /v1/numbers/{id}":
            return response.status_code == 200 and body.get("status") == "released"
        return False
    if failure.code == "ST302":
        # The agent just created was found; the 404 is about the number in the request (one that
        # was released, or never attached), which the check takes for the agent.
        return (
            label.startswith("/v1/agents/{id}/", label.index(" ") + 1)
            and response.status_code == 404
            and re.fullmatch(
                rf"number {_ID} (not found|is not attached to agent {_ID})",
                str(body.get("error", "")),
            )
            is not None
        )
    return False


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if not _is_contract_rule(failure, case, response):
        return True
    # Each dropped failure is written down, for the test to report what the rules accepted.
    log = os.environ.get("CALLINGBOX_SCHEMATHESIS_DROPPED")
    if log:
        body = _body(response)
        entry = {"code": failure.code, "operation": case.operation.label}
        entry["error"] = body.get("error") or f"{response.status_code}, {body.get('status')}"
        with open(log, "a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
    return False
