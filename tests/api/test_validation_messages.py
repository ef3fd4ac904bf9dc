"""Validation messages in words people use: every pattern and enum of the published contract.

The walk covers every ``pattern``, ``enum``, ``const`` and ``patternProperties`` of every request
part in ``openapi.json`` (query parameters, headers, bodies down to each tool); the test fails
when the document gains one that no probe reaches. Each probe sends one valid request with one
value broken, and checks the message: it names the field first, says what is allowed in plain
words (with an example for a format), and quotes no regular expression.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from callingbox_server.core.text import MULTI_LINE_PATTERN, NOT_BLANK_PATTERN, SINGLE_LINE_PATTERN
from tests.fixtures.database import ROOT
from tests.fixtures.factories import BUILTIN_TOOL, HTTP_TOOL, error
from tests.fixtures.tenants import Tenant

DOCUMENT: dict[str, Any] = json.loads((ROOT / "openapi.json").read_text())
METHODS = ("get", "post", "put", "patch", "delete")
# Rules about text hygiene rather than a format: their messages name what is refused.
HYGIENE = {SINGLE_LINE_PATTERN, MULTI_LINE_PATTERN, NOT_BLANK_PATTERN}
# Values to break a pattern with: each probe uses every one its pattern refuses.
CANDIDATES = ("not valid!", "\x01x", " ", "")
# What a message must not quote: regular-expression syntax, or pydantic's own words.
REGEX_SYNTAX = re.compile(r"[\^$\[\]{}\\|]|\(\?|\.\*")
PYDANTIC_WORDS = ("Input should", "String should", "should match", "pattern", "pydantic")

_CREATE = {
    "name": "Front desk",
    "type": "inbound",
    "persona": "Friendly.",
    "instructions": "Take a message.",
    "voice": "alloy",
    "language": "en-US",
    "returns": {"caller_name": "string"},
    "tools": [HTTP_TOOL, BUILTIN_TOOL],
    "webhook_url": "https://example.com/hook",
    "voicemail_action": "hangup",
}
# A valid body of each request schema, with every field that carries a rule.
BODIES: dict[str, dict[str, Any]] = {
    "AgentCreate": _CREATE,
    "AgentUpdate": {key: value for key, value in _CREATE.items() if key != "type"},
    "AttachNumber": {"number_id": str(uuid.uuid4()), "set_as_primary": True},
    "SetPrimaryNumber": {"number_id": str(uuid.uuid4())},
    "PurchaseRequest": {"phone_number": "+14155550100"},
    # Every field at once is a valid body (the agent, unknown here, is then a 404): which fields
    # go with an agent, or with a status, is checked after the call or agent is found.
    "CallCreate": {
        "agent_id": str(uuid.uuid4()),
        "to": "+14155550123",
        "from_number": "+14155550100",
        "instructions": "Take a message.",
        "prompt": "Take a message.",
        "context": {"k": "v"},
        "webhook_url": "https://example.com/hook",
        "metadata": {"crm_id": "42"},
        "language": "en",
        "returns": {"caller_name": "string"},
        "tools": [HTTP_TOOL, BUILTIN_TOOL],
        "voicemail_action": "hangup",
    },
    "Advance": {
        "status": "completed",
        "answered_by": "human",
        "result": {"k": "v"},
        "transcript": [{"role": "agent", "text": "Hello."}],
        "error_code": "agent_error",
        "error_message": "Failed.",
    },
    "InboundCall": {"to": "+14155550100", "from": "+14155550123"},
    "WebhookEndpointCreate": {
        "url": "https://example.com/hook",
        "description": "CRM",
        "enabled_events": ["call.completed"],
    },
    "WebhookEndpointUpdate": {
        "url": "https://example.com/hook",
        "description": "CRM",
        "enabled_events": ["*"],
        "status": "enabled",
    },
}
_PLAIN = object()  # walking the document alone, without a body


@dataclass(frozen=True)
class Rule:
    pointer: str  # where the rule is in the document
    kind: str  # "pattern", "enum" or "key" (a patternProperties key pattern)
    allowed: Any  # the pattern, or the allowed values
    path: tuple[str | int, ...] = ()  # where it applies in the body


def _resolve(schema: dict[str, Any], pointer: str) -> tuple[dict[str, Any], str]:
    while "$ref" in schema:
        pointer = schema["$ref"].removeprefix("#/")
        schema = DOCUMENT
        for part in pointer.split("/"):
            schema = schema[part]
    return schema, pointer


def rules(
    schema: dict[str, Any], pointer: str, value: Any = _PLAIN, path: tuple[str | int, ...] = ()
) -> Iterator[Rule]:
    """The rules under ``schema``: all of them, or those that apply to ``value``'s parts."""
    schema, pointer = _resolve(schema, pointer)
    plain = value is _PLAIN
    for word in ("anyOf", "oneOf"):
        for index, branch in enumerate(schema.get(word, [])):
            resolved, _ = _resolve(branch, f"{pointer}/{word}/{index}")
            tag = resolved.get("properties", {}).get("type", {}).get("const")
            if (
                word == "oneOf"
                and not plain
                and (not isinstance(value, dict) or value.get("type") != tag)
            ):
                continue  # a discriminated union: only the member this value is
            if resolved.get("type") != "null":
                yield from rules(branch, f"{pointer}/{word}/{index}", value, path)
    if "pattern" in schema:
        yield Rule(pointer, "pattern", schema["pattern"], path)
    if "enum" in schema or "const" in schema:
        yield Rule(pointer, "enum", schema.get("enum", [schema.get("const")]), path)
    for name, sub in schema.get("properties", {}).items():
        if plain or (isinstance(value, dict) and name in value):
            inner = value if plain else value[name]
            yield from rules(sub, f"{pointer}/properties/{name}", inner, (*path, name))
    for pattern, sub in schema.get("patternProperties", {}).items():
        key_pointer = f"{pointer}/patternProperties/{pattern}"
        if plain or (isinstance(value, dict) and value):
            yield Rule(key_pointer, "key", pattern, path)
            key = "" if plain else next(iter(value))
            yield from rules(sub, key_pointer, value if plain else value[key], (*path, key))
    if "items" in schema:
        items = [_PLAIN] if plain else (value if isinstance(value, list) else [])
        for index, item in enumerate(items):
            yield from rules(schema["items"], f"{pointer}/items", item, (*path, index))


@dataclass(frozen=True)
class Part:
    """One request part that carries rules: a query parameter, a header, or a body."""

    method: str
    path: str
    where: str  # "query", "header" or "body"
    name: str  # the parameter's name, or the body schema's
    schema: dict[str, Any]
    pointer: str


def request_parts() -> Iterator[Part]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for index, parameter in enumerate(operation.get("parameters", [])):
                pointer = f"paths/{path}/{method}/parameters/{index}/schema"
                yield Part(
                    method, path, parameter["in"], parameter["name"], parameter["schema"], pointer
                )
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                name = body["schema"]["$ref"].rsplit("/", 1)[-1]
                yield Part(method, path, "body", name, body["schema"], f"paths/{path}/{method}")


@dataclass(frozen=True)
class Probe:
    part: Part
    rule: Rule
    bad: str

    @property
    def id(self) -> str:
        where = ".".join(map(str, self.rule.path)) or self.part.name
        return f"{self.part.method} {self.part.path} {where} {self.rule.kind} {self.bad!r}"


def probes() -> list[Probe]:
    found = []
    for part in request_parts():
        value = BODIES[part.name] if part.where == "body" else "x"
        for rule in rules(part.schema, part.pointer, value):
            if rule.kind == "enum":
                found.append(Probe(part, rule, "nosuch"))
                continue
            for bad in CANDIDATES:
                refused = not re.fullmatch(rule.allowed, bad)
                # A header cannot carry a control character at all: the HTTP client refuses.
                sendable = part.where != "header" or bad.isprintable()
                if refused and sendable:
                    found.append(Probe(part, rule, bad))
    return found


PROBES = probes()


def _pointers(found: Iterator[Rule]) -> set[str]:
    return {rule.pointer for rule in found}


def _every_rule(node: Any, pointer: str) -> Iterator[str]:
    """Every rule anywhere in the document, requests and responses alike."""
    if isinstance(node, dict):
        if {"pattern", "enum", "const"} & set(node):
            yield pointer
        for key, child in node.items():
            if key == "patternProperties":
                for pattern, sub in child.items():
                    yield f"{pointer}/patternProperties/{pattern}"
                    yield from _every_rule(sub, f"{pointer}/patternProperties/{pattern}")
            else:
                yield from _every_rule(child, f"{pointer}/{key}".lstrip("/"))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _every_rule(child, f"{pointer}/{index}")


class TestTheWalk:
    def test_probes_reach_every_rule_of_every_request(self) -> None:
        published = set()
        for part in request_parts():
            published |= _pointers(rules(part.schema, part.pointer))
        probed = {probe.rule.pointer for probe in PROBES}

        assert published == probed
        assert len(probed) > 40, "the walk found suspiciously few rules"

    def test_every_other_rule_belongs_to_a_response(self) -> None:
        requests = set()
        for part in request_parts():
            requests |= _pointers(rules(part.schema, part.pointer))
        rest = set(_every_rule(DOCUMENT, "")) - requests
        request_schemas = {pointer.split("/")[2] for pointer in requests if pointer.startswith("c")}

        for pointer in rest:
            assert pointer.startswith("components/schemas/"), pointer
            assert pointer.split("/")[2] not in request_schemas, pointer


def valid_request(method: str, path: str) -> dict[str, Any]:
    """Options of a valid request to the operation (a fresh copy of its body, if it has one)."""
    body = next(
        (
            part.name
            for part in request_parts()
            if part.where == "body" and (part.method, part.path) == (method, path)
        ),
        None,
    )
    return {"json": json.loads(json.dumps(BODIES[body]))} if body is not None else {}


def _url(path: str) -> str:
    return path.replace("{id}", str(uuid.uuid4())).replace("{number_id}", str(uuid.uuid4()))


def _request(probe: Probe) -> dict[str, Any]:
    """The probe's request: valid but for the one broken value."""
    part, rule = probe.part, probe.rule
    options = valid_request(part.method, part.path)
    if part.where == "query":
        options["params"] = {part.name: probe.bad}
    elif part.where == "header":
        options["headers"] = {part.name: probe.bad}
    else:
        *parents, last = rule.path
        target = options["json"]
        for step in parents:
            target = target[step]
        if rule.kind == "key":
            target = target[last]
            target[probe.bad] = target.pop(next(iter(target)))
        else:
            target[last] = probe.bad
    return options


def _field(probe: Probe) -> str:
    return ".".join(map(str, probe.rule.path))


def _prefixes(probe: Probe) -> list[str]:
    """How the message may begin: with the field, parameter or header it is about."""
    part = probe.part
    if part.where == "query":
        return [f"invalid query parameter {part.name}: "]
    if part.where == "header":
        return [f"invalid {part.name} header: "]
    if probe.rule.kind == "key":
        return [f"invalid field {_field(probe)}: key {probe.bad!r} "]
    # A rule on one property of a JSON object value is checked on the object as a whole.
    parent = ".".join(map(str, probe.rule.path[:-1]))
    return [f"invalid field {_field(probe)}: ", f"invalid field {parent}: "]


class TestMessages:
    async def test_the_unbroken_requests_are_valid(self, tenant: Tenant) -> None:
        for method, path in {(probe.part.method, probe.part.path) for probe in PROBES}:
            options = valid_request(method, path)
            r = await tenant.client.request(method.upper(), _url(path), **options)
            assert r.status_code != 400, (method, path, r.text)

    @pytest.mark.parametrize("probe", PROBES, ids=lambda probe: probe.id)
    async def test_names_the_field_and_what_is_allowed(self, tenant: Tenant, probe: Probe) -> None:
        options = _request(probe)

        r = await tenant.client.request(probe.part.method.upper(), _url(probe.part.path), **options)

        assert r.status_code == 400, r.text
        message = r.json()["error"]
        assert r.json() == error(r, message)
        prefix = next((p for p in _prefixes(probe) if message.startswith(p)), None)
        assert prefix is not None, (message, _prefixes(probe))
        if not message.startswith(_prefixes(probe)[0]):
            assert str(probe.rule.path[-1]) in message  # the parent's message names the field
        words = message.removeprefix(prefix)
        assert REGEX_SYNTAX.search(words) is None, message
        assert not any(word in message for word in PYDANTIC_WORDS), message
        if probe.rule.kind == "enum":
            for allowed in probe.rule.allowed:
                # Whole values, "*" included (no word boundary beside a non-word character).
                pattern = rf"(?<![\w.]){re.escape(str(allowed))}(?![\w.])"
                assert re.search(pattern, words), message
        elif probe.rule.allowed in HYGIENE:
            assert re.search(r"control characters|blank|empty", words), message
        else:
            assert "such as" in words, f"no example: {message}"


class TestFieldHints:
    @pytest.mark.parametrize(
        ("field", "message"),
        [
            ("prompt", "unknown field: prompt (did you mean instructions?)"),
            ("system_prompt", "unknown field: system_prompt (did you mean instructions?)"),
            ("voice_id", "unknown field: voice_id (did you mean voice?)"),
            ("instrucions", "unknown field: instrucions (did you mean instructions?)"),
            ("webhookurl", "unknown field: webhookurl (did you mean webhook_url?)"),
            ("colour", "unknown field: colour"),
        ],
    )
    async def test_an_unknown_field_suggests_ours(
        self, tenant: Tenant, field: str, message: str
    ) -> None:
        r = await tenant.client.post(
            "/v1/agents", json={"name": "A", "type": "inbound", field: "Take a message."}
        )

        assert r.status_code == 400
        assert r.json() == error(r, message)

    async def test_a_nested_unknown_field_is_named_by_the_path_sent(self, tenant: Tenant) -> None:
        body = {"name": "A", "type": "inbound", "tools": [{**BUILTIN_TOOL, "secret": "x"}]}

        r = await tenant.client.post("/v1/agents", json=body)

        assert r.status_code == 400
        assert r.json() == error(r, "unknown field: tools.0.secret")

    async def test_an_invalid_builtin_field_is_not_mistaken_for_the_tag(
        self, tenant: Tenant
    ) -> None:
        body = {"name": "A", "type": "inbound", "tools": [{**BUILTIN_TOOL, "builtin": "End"}]}

        r = await tenant.client.post("/v1/agents", json=body)

        assert r.status_code == 400
        assert r.json() == error(
            r,
            "invalid field tools.0.builtin: must be 1 to 64 lowercase letters, digits or _, "
            "starting with a letter, such as end_call",
        )
