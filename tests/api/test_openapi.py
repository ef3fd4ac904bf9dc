"""The OpenAPI document is a published contract: checked in, complete, valid, rendered at /docs."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from tests.fixtures.database import ROOT
from tests.fixtures.servers import clean_environment

CHECKED_IN = ROOT / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def checked_in() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(CHECKED_IN.read_text())
    return document


@pytest.fixture
async def served(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200, r.text
    document: dict[str, Any] = r.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        *_, name = schema["$ref"].split("/")
        schema = document["components"]["schemas"][name]
    return schema


def media_examples(document: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    """Every example given for a request or response body, on the media type or its schema."""
    found = [media["example"]] if "example" in media else []
    found += [example["value"] for example in media.get("examples", {}).values()]
    found += resolve(document, media.get("schema", {})).get("examples", [])
    return found


def render(document: dict[str, Any]) -> list[str]:
    return json.dumps(document, indent=2, ensure_ascii=False).splitlines()


class TestCheckedIn:
    def test_matches_the_served_document(self, served: dict[str, Any]) -> None:
        if served != checked_in():
            diff = "\n".join(
                difflib.unified_diff(
                    render(checked_in()), render(served), "openapi.json", "served", lineterm=""
                )
            )
            pytest.fail(
                "openapi.json differs from the document the server serves. If the API change is "
                f"deliberate, run `make openapi` and commit openapi.json with it.\n{diff[:6000]}"
            )

    @pytest.mark.system
    def test_make_openapi_writes_exactly_the_checked_in_file(self, tmp_path: Path) -> None:
        # What `make openapi` runs (see the Makefile), with no database anywhere.
        output = tmp_path / "openapi.json"
        result = subprocess.run(
            [sys.executable, "-m", "callingbox_server.cli", "openapi", "--output", str(output)],
            env=clean_environment(),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

        assert result.returncode == 0, result.stderr
        assert output.read_text() == CHECKED_IN.read_text()
        assert not (tmp_path / ".callingbox").exists(), "no embedded database was started"


class TestValidity:
    def test_is_a_valid_openapi_3_1_document(self) -> None:
        document = checked_in()

        assert document["openapi"].startswith("3.1.")
        validate(document, cls=OpenAPIV31SpecValidator)  # raises on the first error

    def test_every_example_matches_its_schema(self) -> None:
        document = checked_in()
        checked = 0
        for _method, _path, operation in operations(document):
            bodies = [operation.get("requestBody", {}).get("content", {})]
            bodies += [response.get("content", {}) for response in operation["responses"].values()]
            for content in bodies:
                for media in content.values():
                    schema = {**media["schema"], "components": document["components"]}
                    for example in media_examples(document, media):
                        OAS31Validator(schema).validate(example)
                        checked += 1
        assert checked > 40, checked


class TestOperations:
    def test_every_operation_has_a_unique_id_a_tag_and_a_one_line_summary(self) -> None:
        ids = []
        for method, path, operation in operations(checked_in()):
            where = f"{method} {path}"
            ids.append(operation["operationId"])
            assert operation.get("tags"), where
            summary = operation.get("summary", "")
            assert summary, where
            assert "\n" not in summary, where
            assert len(summary) <= 60, where
            assert operation.get("description"), where
        assert len(ids) == len(set(ids))

    def test_every_body_has_an_example(self) -> None:
        document = checked_in()
        for method, path, operation in operations(document):
            where = f"{method} {path}"
            if "requestBody" in operation:
                (media,) = operation["requestBody"]["content"].values()
                assert media_examples(document, media), f"{where}: request body"
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    assert media_examples(document, media), f"{where}: {status} response"

    def test_every_v1_operation_needs_the_bearer_key_and_documents_its_errors(self) -> None:
        document = checked_in()
        (scheme,) = document["components"]["securitySchemes"].values()
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
        error = {"$ref": "#/components/schemas/ErrorBody"}
        for method, path, operation in operations(document):
            if not path.startswith("/v1/"):
                assert "security" not in operation, f"{method} {path} is public"
                continue
            assert operation["security"] == [{"ApiKey": []}], f"{method} {path}"
            for status, response in operation["responses"].items():
                if status.startswith("2"):
                    continue
                (media,) = response["content"].values()
                assert media["schema"] == error, (method, path, status)
                codes = {example["value"]["code"] for example in media["examples"].values()}
                assert codes, (method, path, status)

    def test_the_examples_follow_the_callingbox_reference(self) -> None:
        schemas = checked_in()["components"]["schemas"]

        (agent,) = schemas["Agent"]["examples"]
        assert agent["name"] == "Appointment reminders"
        assert agent["returns"] == {"confirmed": "boolean", "reschedule_to": "string"}
        assert agent["created_at"].endswith("Z")
        (number,) = agent["numbers"]
        assert number == schemas["Number"]["examples"][0]
        assert number["id"] == agent["primary_number_id"]
        assert agent["id"] in number["outbound_agent_ids"]
        (purchase,) = schemas["PurchaseRequest"]["examples"]
        (offer,) = schemas["AvailableNumbers"]["examples"][0]["data"]
        assert purchase["phone_number"] == offer["phone_number"] == number["e164"]


class TestDocs:
    async def test_docs_render_the_document(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/docs")

        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert "swagger-ui" in r.text
        assert "/openapi.json" in r.text

    async def test_docs_work_with_the_network_blocked(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Nothing may leave this machine while the page and its assets are served.
        monkeypatch.setattr(socket.socket, "connect", _local_connect_only(socket.socket.connect))
        monkeypatch.setattr(socket, "getaddrinfo", _no_name_lookups)

        page = await client.get("/docs")

        assert page.status_code == 200
        assert "://" not in page.text, "the page names another origin"
        assets = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert sorted(assets) == [
            "/static-offline-docs/favicon.png",
            "/static-offline-docs/swagger-ui-bundle.js",
            "/static-offline-docs/swagger-ui.css",
        ]
        types = {}
        for asset in assets:
            r = await client.get(asset)
            assert r.status_code == 200, asset
            types[asset.rsplit(".", 1)[-1]] = r
        assert types["js"].headers["content-type"].startswith("text/javascript")
        assert "SwaggerUIBundle" in types["js"].text
        assert types["css"].headers["content-type"].startswith("text/css")
        # The stylesheet's images are inline: no font or image is fetched from elsewhere.
        assert all(url.startswith("data:") for url in CSS_URL.findall(types["css"].text))
        assert types["png"].headers["content-type"] == "image/png"
        # No online validator: Swagger UI would otherwise send it the document.
        assert '"validatorUrl": null' in page.text

    async def test_redoc_is_not_served(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/redoc")

        assert r.status_code == 404


CSS_URL = re.compile(r"url\(\s*[\"']?([^\"')]*)")


def _local_connect_only(connect: Any) -> Any:
    def guarded(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host).is_loopback:
            raise OSError(f"network blocked by the test: {address}")
        return connect(sock, address)

    return guarded


def _no_name_lookups(host: Any, *args: Any, **kwargs: Any) -> Any:
    raise OSError(f"network blocked by the test: name lookup of {host}")
