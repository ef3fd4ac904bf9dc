"""The HTTP layer every endpoint shares: request ids, errors, content types, limits, OpenAPI."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callingbox_server.api.app import create_app
from callingbox_server.core.config import Settings
from tests.fixtures.tenants import Tenant

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_BODY_BYTES = 1_048_576  # the default limit
# What the server generates when it has no usable id: any id it would itself echo back.
GENERATED_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def error_body(r: httpx.Response, code: str, message: str) -> dict[str, str]:
    return {"error": message, "code": code, "request_id": r.headers["x-request-id"]}


def padded_purchase(size: int, phone_number: str = "+19075550100") -> bytes:
    """A valid purchase body of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    body = json.dumps({"phone_number": phone_number}).encode()
    return body + b" " * (size - len(body))


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.fixture
async def app_that_fails(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)

    @app.get("/v1/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("secret internals: password=hunter2")

    yield app
    await app.state.engine.dispose()


@pytest.fixture
async def app_without_database() -> AsyncIterator[FastAPI]:
    app = create_app(
        Settings(
            database_url="postgresql://postgres@127.0.0.1:1/nope",
            key_hash_secret="x",
            db_connect_timeout=1,
        )
    )
    yield app
    await app.state.engine.dispose()


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class TestRequestId:
    async def test_generated_when_absent(self, tenant: Tenant) -> None:
        first = await tenant.client.get("/v1/agents")
        second = await tenant.client.get("/v1/agents")
        assert GENERATED_ID.match(first.headers["x-request-id"])
        assert GENERATED_ID.match(second.headers["x-request-id"])
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    @pytest.mark.parametrize(
        "request_id",
        # A fixed id for the random UUID: pytest-xdist workers must collect the same names.
        [
            "abc-123",
            "req_01HZX3K4",
            pytest.param(str(uuid.uuid4()), id="uuid"),
            "trace:span.1",
            pytest.param("x" * 128, id="request_id4"),
        ],
    )
    async def test_well_formed_id_is_echoed(self, tenant: Tenant, request_id: str) -> None:
        r = await tenant.client.get("/v1/agents", headers={"X-Request-Id": request_id})
        assert r.status_code == 200
        assert r.headers["x-request-id"] == request_id
        missing = await tenant.client.get(
            f"/v1/agents/{uuid.uuid4()}", headers={"X-Request-Id": request_id}
        )
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] == request_id
        assert missing.json()["request_id"] == request_id

    @pytest.mark.parametrize(
        "request_id",
        ["has spaces in it", "x" * 300, "semi;colon", 'quote"d', "<script>", "\u00e9t\u00e9"],
        ids=["spaces", "300-chars", "semicolon", "quote", "markup", "latin-1"],
    )
    async def test_malformed_id_is_replaced(
        self, client: httpx.AsyncClient, request_id: str
    ) -> None:
        encoded = request_id.encode("latin-1")
        r = await client.get("/v1/agents", headers=[(b"X-Request-Id", encoded)])
        assert r.status_code == 401
        assert r.headers["x-request-id"] != request_id
        assert GENERATED_ID.match(r.headers["x-request-id"])
        assert r.json()["request_id"] == r.headers["x-request-id"]

    async def test_empty_id_is_replaced(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/agents", headers={"X-Request-Id": ""})
        assert GENERATED_ID.match(r.headers["x-request-id"])

    async def test_every_kind_of_response_carries_it(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        requests: list[tuple[httpx.AsyncClient, str, str, dict[str, Any]]] = [
            (client, "GET", "/healthz", {}),
            (client, "GET", "/readyz", {}),
            (client, "GET", "/openapi.json", {}),
            (client, "GET", "/v1/agents", {}),
            (client, "GET", "/nowhere", {}),
            (tenant.client, "GET", "/v1/numbers", {}),
            (tenant.client, "POST", "/v1/agents", {"json": {"name": "a", "type": "inbound"}}),
            (tenant.client, "GET", f"/v1/numbers/{uuid.uuid4()}", {}),
            (tenant.client, "PUT", "/v1/agents", {}),
            (tenant.client, "GET", "/v1/numbers", {"params": {"limit": 0}}),
            (tenant.client, "POST", "/v1/agents", {"content": b"x", "headers": {}}),
            (tenant.client, "POST", "/v1/agents", {"content": b"x" * (MAX_BODY_BYTES + 1)}),
        ]
        for sender, method, path, options in requests:
            r = await sender.request(method, path, **options)
            assert GENERATED_ID.match(r.headers["x-request-id"]), (method, path, r.status_code)
            fixed = await sender.request(
                method, path, **{**options, "headers": {"X-Request-Id": "fixed-id"}}
            )
            assert fixed.status_code == r.status_code, (method, path)
            assert fixed.headers["x-request-id"] == "fixed-id", (method, path)


class TestUnknownRoute:
    @pytest.mark.parametrize("path", ["/nowhere", "/v1", "/v1/nothing", "/v2/agents"])
    async def test_is_a_json_404(self, tenant: Tenant, path: str) -> None:
        r = await tenant.client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        assert r.json() == error_body(r, "not_found", f"no route for GET {path}")

    @pytest.mark.parametrize("path", ["/v1/agents/", "/v1/numbers/"])
    async def test_trailing_slash_is_no_route_not_a_redirect(
        self, tenant: Tenant, path: str
    ) -> None:
        r = await tenant.client.get(path)
        assert r.status_code == 404
        assert r.json() == error_body(r, "not_found", f"no route for GET {path}")

    async def test_without_credentials_too(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/v1/nothing", json={})
        assert r.status_code == 404
        assert r.json() == error_body(r, "not_found", "no route for POST /v1/nothing")


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("PUT", "/v1/agents", "GET, HEAD, POST"),
            ("DELETE", "/v1/agents", "GET, HEAD, POST"),
            ("PUT", "/v1/agents/{id}", "GET, HEAD, PATCH, DELETE"),
            ("GET", "/v1/agents/{id}/numbers", "POST"),
            ("PATCH", "/v1/agents/{id}/numbers/{id}", "DELETE"),
            ("POST", "/v1/agents/{id}/primary-number", "PUT"),
            ("POST", "/v1/numbers", "GET, HEAD"),
            ("PATCH", "/v1/numbers/{id}", "GET, HEAD, DELETE"),
            # Literal paths are not read as ids: only their own methods are listed.
            ("POST", "/v1/numbers/available", "GET, HEAD"),
            ("OPTIONS", "/v1/numbers/available", "GET, HEAD"),
            ("GET", "/v1/numbers/purchase", "POST"),
        ],
    )
    async def test_lists_the_allowed_methods(
        self, tenant: Tenant, method: str, path: str, allow: str
    ) -> None:
        path = path.replace("{id}", str(uuid.uuid4()))
        r = await tenant.client.request(method, path)
        assert r.status_code == 405
        assert r.headers["allow"] == allow
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        assert r.json() == error_body(
            r, "method_not_allowed", f"method {method} not allowed on {path}"
        )

    async def test_without_credentials_too(self, client: httpx.AsyncClient) -> None:
        r = await client.put("/v1/agents")
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD, POST"
        assert r.json() == error_body(
            r, "method_not_allowed", "method PUT not allowed on /v1/agents"
        )


class TestRequestBody:
    @pytest.mark.parametrize(
        "content", [b"{bad", b'{"phone_number": }', b"{'phone_number': '+19075550100'}", b"nul"]
    )
    async def test_malformed_json(self, tenant: Tenant, content: bytes) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase", content=content, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json() == error_body(r, "invalid_request", "request body is not valid JSON")

    async def test_malformed_json_on_every_body_endpoint(self, tenant: Tenant) -> None:
        agent = await tenant.client.post("/v1/agents", json={"name": "a", "type": "outbound"})
        agent_id = agent.json()["id"]
        for method, path in [
            ("POST", "/v1/agents"),
            ("PATCH", f"/v1/agents/{agent_id}"),
            ("POST", f"/v1/agents/{agent_id}/numbers"),
            ("PUT", f"/v1/agents/{agent_id}/primary-number"),
            ("POST", "/v1/numbers/purchase"),
        ]:
            r = await tenant.client.request(
                method, path, content=b"{", headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 400, (method, path, r.text)
            assert r.json() == error_body(r, "invalid_request", "request body is not valid JSON")

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json", None]
    )
    async def test_body_that_is_not_json_is_unsupported(
        self, tenant: Tenant, content_type: str | None
    ) -> None:
        headers = {} if content_type is None else {"Content-Type": content_type}
        r = await tenant.client.post(
            "/v1/numbers/purchase",
            content=b'{"phone_number": "+19075550100"}',
            headers=headers,
        )
        assert r.status_code == 415, r.text
        assert r.json() == error_body(
            r,
            "unsupported_media_type",
            "request body must be sent as Content-Type: application/json",
        )
        listed = await tenant.client.get("/v1/numbers")
        assert listed.json() == {"data": [], "has_more": False}

    async def test_json_with_charset_is_accepted(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase",
            content=json.dumps({"phone_number": tenant.phones.phone(0)}).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert r.status_code == 201, r.text

    async def test_body_over_the_limit_with_content_length(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase",
            content=padded_purchase(MAX_BODY_BYTES + 1),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        assert r.json() == error_body(r, "payload_too_large", "request body is too large")

    async def test_body_over_the_limit_streamed_without_content_length(
        self, tenant: Tenant
    ) -> None:
        request = tenant.client.build_request(
            "POST",
            "/v1/numbers/purchase",
            content=chunks(padded_purchase(MAX_BODY_BYTES + 1)),
            headers={"Content-Type": "application/json"},
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        r = await tenant.client.send(request)
        assert r.status_code == 413
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        assert r.json() == error_body(r, "payload_too_large", "request body is too large")
        listed = await tenant.client.get("/v1/numbers")
        assert listed.json() == {"data": [], "has_more": False}

    async def test_body_at_the_limit_is_accepted(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/numbers/purchase",
            content=padded_purchase(MAX_BODY_BYTES, tenant.phones.phone(0)),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 201, r.text
        streamed = await tenant.client.post(
            "/v1/numbers/purchase",
            content=chunks(padded_purchase(MAX_BODY_BYTES, tenant.phones.phone(1))),
            headers={"Content-Type": "application/json"},
        )
        assert streamed.status_code == 201, streamed.text


class TestResponseShape:
    async def test_json_content_type_everywhere(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        number = await tenant.client.post(
            "/v1/numbers/purchase", json={"phone_number": tenant.phones.phone(0)}
        )
        expected = [
            (number, 201),
            (await client.get("/healthz"), 200),
            (await client.get("/readyz"), 200),
            (await client.get("/openapi.json"), 200),
            (await client.get("/v1/numbers"), 401),
            (await tenant.client.get("/v1/numbers"), 200),
            (await tenant.client.get("/v1/numbers/available"), 200),
            (await tenant.client.get(f"/v1/numbers/{number.json()['id']}"), 200),
            (await tenant.client.delete(f"/v1/numbers/{number.json()['id']}"), 200),
            (await tenant.client.get("/v1/agents"), 200),
            (await tenant.client.post("/v1/agents", json={"name": "a", "type": "inbound"}), 201),
            (await tenant.client.post("/v1/agents", json={"name": "a"}), 400),
            (await tenant.client.get("/v1/agents/nope"), 404),
            (await tenant.client.get("/nowhere"), 404),
            (await tenant.client.put("/v1/agents"), 405),
            (
                await tenant.client.post(
                    "/v1/agents", content=b"x", headers={"Content-Type": "x/y"}
                ),
                415,
            ),
        ]
        for r, status in expected:
            assert r.status_code == status, (r.request.url, r.text)
            assert r.headers["content-type"] == JSON_CONTENT_TYPE, (r.request.url, r.status_code)
            r.json()

    async def test_no_body_has_fastapis_detail_key(
        self, tenant: Tenant, client: httpx.AsyncClient
    ) -> None:
        agent_id = str(uuid.uuid4())
        expected = [
            (await client.get("/v1/agents"), 401),
            (await client.get("/nowhere"), 404),
            (await tenant.client.get("/nowhere"), 404),
            (await tenant.client.put("/v1/agents"), 405),
            (await tenant.client.get("/v1/agents", params={"limit": "x"}), 400),
            (await tenant.client.get("/v1/agents", params={"type": "sideways"}), 400),
            (await tenant.client.get("/v1/agents", params={"include_archived": "maybe"}), 400),
            (await tenant.client.get("/v1/agents/not-a-uuid"), 404),
            (await tenant.client.post("/v1/agents", json={}), 400),
            (await tenant.client.post("/v1/agents", json={"name": 1, "type": "inbound"}), 400),
            (await tenant.client.post("/v1/agents", json=[]), 400),
            (await tenant.client.post("/v1/agents"), 400),
            (await tenant.client.patch(f"/v1/agents/{agent_id}", json={"type": "outbound"}), 400),
            (
                await tenant.client.post(f"/v1/agents/{agent_id}/numbers", json={"number_id": "x"}),
                400,
            ),
            (await tenant.client.put(f"/v1/agents/{agent_id}/primary-number", json={}), 400),
            (await tenant.client.get("/v1/numbers", params={"status": "gone"}), 400),
            (await tenant.client.get("/v1/numbers/available", params={"area_code": "1"}), 400),
            (await tenant.client.post("/v1/numbers/purchase", json={"phone_number": None}), 400),
            (await tenant.client.post("/v1/numbers/purchase", content=b"\xff\xfe"), 415),
            (
                await tenant.client.post(
                    "/v1/numbers/purchase",
                    content=b"\xff\xfe",
                    headers={"Content-Type": "application/json"},
                ),
                400,
            ),
            (await tenant.client.delete("/v1/numbers/%20"), 404),
        ]
        for r, status in expected:
            assert r.status_code == status, (r.request.url, r.text)
            body = r.json()
            assert "detail" not in body, (r.request.url, body)
            assert body == {
                "error": body["error"],
                "code": body["code"],
                "request_id": r.headers["x-request-id"],
            }
            assert isinstance(body["error"], str)
            assert body["error"]
            assert r.status_code != 422


class TestHealth:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    async def test_readyz(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ready"}


class TestOpenApi:
    async def fetch(self, client: httpx.AsyncClient) -> dict[str, Any]:
        r = await client.get("/openapi.json")
        assert r.status_code == 200, r.text
        document: dict[str, Any] = r.json()
        return document

    async def test_has_no_validation_422(self, client: httpx.AsyncClient) -> None:
        """Validation errors are 400s; the one 422 is a reused Idempotency-Key, on POSTs."""
        document = await self.fetch(client)
        schemas = document["components"]["schemas"]
        assert "HTTPValidationError" not in schemas
        assert "ValidationError" not in schemas
        with_422 = {
            (method, path)
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if "422" in operation["responses"]
        }
        assert with_422 == {
            ("post", "/v1/agents"),
            ("post", "/v1/agents/{id}/numbers"),
            ("post", "/v1/numbers/purchase"),
            ("post", "/v1/calls"),
            ("post", "/v1/calls/{id}/cancel"),
            ("post", "/v1/test_helpers/calls/{id}/advance"),
            ("post", "/v1/test_helpers/inbound_calls"),
            ("post", "/v1/webhook_endpoints"),
            ("post", "/v1/webhook_endpoints/{id}/rotate_secret"),
            ("post", "/v1/webhook_deliveries/{id}/redeliver"),
        }
        for method, path in with_422:
            response = document["paths"][path][method]["responses"]["422"]
            assert response["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }

    async def test_patch_does_not_offer_null_for_required_fields(
        self, client: httpx.AsyncClient
    ) -> None:
        update = (await self.fetch(client))["components"]["schemas"]["AgentUpdate"]
        assert update["properties"]["name"]["type"] == "string"
        assert update["properties"]["voicemail_action"]["enum"] == ["hangup", "leave_message"]
        assert "anyOf" not in update["properties"]["name"]
        assert "anyOf" not in update["properties"]["voicemail_action"]

    async def test_cursors_are_documented_as_uuids(self, client: httpx.AsyncClient) -> None:
        document = await self.fetch(client)
        for path in ("/v1/agents", "/v1/numbers"):
            parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
            for cursor in ("starting_after", "ending_before"):
                branches = parameters[cursor]["schema"]["anyOf"]
                assert {"type": "string", "format": "uuid"} in branches, (path, cursor)

    async def test_declares_bearer_security(self, client: httpx.AsyncClient) -> None:
        document = await self.fetch(client)
        schemes = document["components"]["securitySchemes"]
        assert len(schemes) == 1
        ((name, scheme),) = schemes.items()
        assert scheme["type"] == "http"
        assert scheme["scheme"] == "bearer"
        operations = [
            (path, method, operation)
            for path, item in document["paths"].items()
            for method, operation in item.items()
        ]
        v1 = [(p, m, o) for p, m, o in operations if p.startswith("/v1/")]
        assert len(v1) == 30
        for path, method, operation in v1:
            assert operation["security"] == [{name: []}], (method, path)

    async def test_documents_every_endpoint_of_sections_three_to_five(
        self, client: httpx.AsyncClient
    ) -> None:
        document = await self.fetch(client)
        documented = {
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method in item
            if path.startswith("/v1/")
        }
        assert documented == {
            ("GET", "/v1/agents"),
            ("POST", "/v1/agents"),
            ("GET", "/v1/agents/{id}"),
            ("PATCH", "/v1/agents/{id}"),
            ("DELETE", "/v1/agents/{id}"),
            ("POST", "/v1/agents/{id}/numbers"),
            ("DELETE", "/v1/agents/{id}/numbers/{number_id}"),
            ("PUT", "/v1/agents/{id}/primary-number"),
            ("GET", "/v1/numbers"),
            ("GET", "/v1/numbers/{id}"),
            ("GET", "/v1/numbers/available"),
            ("POST", "/v1/numbers/purchase"),
            ("DELETE", "/v1/numbers/{id}"),
            ("GET", "/v1/calls"),
            ("POST", "/v1/calls"),
            ("GET", "/v1/calls/{id}"),
            ("GET", "/v1/calls/{id}/transcript"),
            ("POST", "/v1/calls/{id}/cancel"),
            ("POST", "/v1/test_helpers/calls/{id}/advance"),
            ("POST", "/v1/test_helpers/inbound_calls"),
            # Section 6: webhooks.
            ("GET", "/v1/webhook_endpoints"),
            ("POST", "/v1/webhook_endpoints"),
            ("GET", "/v1/webhook_endpoints/{id}"),
            ("PATCH", "/v1/webhook_endpoints/{id}"),
            ("DELETE", "/v1/webhook_endpoints/{id}"),
            ("POST", "/v1/webhook_endpoints/{id}/rotate_secret"),
            ("GET", "/v1/webhook_deliveries"),
            ("GET", "/v1/webhook_deliveries/{id}"),
            ("POST", "/v1/webhook_deliveries/{id}/redeliver"),
            ("GET", "/v1/webhook_deliveries/{id}/attempts"),
        }

    async def test_documents_the_error_body(self, client: httpx.AsyncClient) -> None:
        document = await self.fetch(client)
        schemas = document["components"]["schemas"]
        (error_schema,) = [
            name
            for name, schema in schemas.items()
            if set(schema.get("properties", {})) == {"error", "code", "request_id"}
        ]
        schema = schemas[error_schema]
        assert sorted(schema["required"]) == ["code", "error", "request_id"]
        for field in ("error", "code", "request_id"):
            assert schema["properties"][field]["type"] == "string"
        ref = {"$ref": f"#/components/schemas/{error_schema}"}
        for path, item in document["paths"].items():
            if not path.startswith("/v1/"):
                continue
            for method, operation in item.items():
                errors = {s: r for s, r in operation["responses"].items() if not s.startswith("2")}
                assert {"401", "503"} <= set(errors), (method, path)
                for status, response in errors.items():
                    content = response["content"]["application/json"]
                    assert content["schema"] == ref, (method, path, status)

    async def test_is_public(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/openapi.json")
        assert r.status_code == 200


class TestInternalError:
    async def test_is_a_json_500_without_internals(self, app_that_fails: FastAPI) -> None:
        async with client_of(app_that_fails) as client:
            r = await client.get("/v1/boom", headers={"X-Request-Id": "boom-1"})
        assert r.status_code == 500
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        assert r.headers["x-request-id"] == "boom-1"
        assert r.json() == {
            "error": "internal error",
            "code": "internal_error",
            "request_id": "boom-1",
        }
        assert b"hunter2" not in r.content
        assert b"Traceback" not in r.content
        assert b"RuntimeError" not in r.content

    async def test_gets_a_request_id_when_none_was_sent(self, app_that_fails: FastAPI) -> None:
        async with client_of(app_that_fails) as client:
            r = await client.get("/v1/boom")
        assert r.status_code == 500
        assert GENERATED_ID.match(r.headers["x-request-id"])
        assert r.json() == error_body(r, "internal_error", "internal error")


class TestDatabaseUnavailable:
    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("GET", "/v1/agents", None),
            ("GET", "/v1/numbers/available", None),
            ("POST", "/v1/numbers/purchase", {"phone_number": "+19075550100"}),
        ],
    )
    async def test_is_a_prompt_503_with_retry_after(
        self,
        app_without_database: FastAPI,
        method: str,
        path: str,
        body: dict[str, str] | None,
    ) -> None:
        key = "sk_live_" + "a" * 43
        async with client_of(app_without_database) as client:
            started = time.monotonic()
            r = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {key}"}
            )
            elapsed = time.monotonic() - started
        assert elapsed < 2.0
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == JSON_CONTENT_TYPE
        assert int(r.headers["retry-after"]) >= 1
        assert r.json() == error_body(r, "unavailable", "the database is unavailable, retry")

    async def test_readyz_is_503(self, app_without_database: FastAPI) -> None:
        async with client_of(app_without_database) as client:
            started = time.monotonic()
            r = await client.get("/readyz")
            elapsed = time.monotonic() - started
        assert elapsed < 2.5
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert r.json() == error_body(r, "unavailable", "the database is unavailable")

    async def test_healthz_still_answers(self, app_without_database: FastAPI) -> None:
        async with client_of(app_without_database) as client:
            r = await client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    async def test_bad_credentials_still_get_401(self, app_without_database: FastAPI) -> None:
        async with client_of(app_without_database) as client:
            r = await client.get("/v1/agents", headers={"Authorization": "Basic x"})
        assert r.status_code == 401
        assert r.json() == error_body(r, "unauthorized", "invalid or missing API key")
