"""Logs: one structured line per request, JSON or text, never a key or a body; errors once.

The request lines are read from a real ``serve`` process's stderr, as a log pipeline would.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from callingbox_server.api.app import create_app
from callingbox_server.core.config import Settings
from callingbox_server.core.logs import configure_logging
from tests.fixtures.servers import HTTP_TIMEOUT, Server, server_env, start_server

ROUTE_FIELDS = {"method", "route", "status", "duration_ms", "request_id", "org_id"}


def served_env(database_url: str, log_format: str) -> dict[str, str]:
    return server_env(database_url, log_level="info", log_format=log_format)


def run_requests(server: Server, key: str, marker: str) -> dict[str, httpx.Response]:
    """A few requests of every kind; the agent's name is ``marker`` (it must not be logged)."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        created = client.post("/v1/agents", headers=auth, json={"name": marker, "type": "inbound"})
        assert created.status_code == 201, created.text
        return {
            "create": created,
            "get": client.get(f"/v1/agents/{created.json()['id']}", headers=auth),
            "unauthorized": client.get("/v1/agents", headers={"Authorization": f"Bearer {key}x"}),
            "unknown": client.get("/no/such/path", headers=auth),
        }


def stopped_output(server: Server) -> str:
    server.stop()  # flushes everything the server wrote
    return server.stderr_path.read_text()


@pytest.mark.system
class TestJsonRequestLines:
    def test_one_line_per_request_with_every_field(
        self, database_url: str, live_key: str, tmp_path: Path, servers: list[Server]
    ) -> None:
        server = start_server(served_env(database_url, "json"), tmp_path)
        servers.append(server)
        server.wait_ready()
        marker = f"body-marker-{uuid.uuid4().hex}"
        responses = run_requests(server, live_key, marker)
        org_id = responses["create"].json()["org_id"]

        output = stopped_output(server)

        lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
        requests = {line["request_id"]: line for line in lines if line.get("event") == "request"}
        by_name = {name: requests.pop(r.headers["x-request-id"]) for name, r in responses.items()}
        # What remains are the readiness probes of wait_ready.
        assert {(line["route"], line["status"]) for line in requests.values()} == {("/readyz", 200)}
        for line in by_name.values():
            assert set(line) >= ROUTE_FIELDS, line
            assert line["level"] == "info"
            assert line["logger"] == "callingbox_server.access"
            assert isinstance(line["duration_ms"], float | int)
            assert line["duration_ms"] >= 0
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])
        summary = {
            name: (line["method"], line["route"], line["status"], line["org_id"])
            for name, line in by_name.items()
        }
        assert summary == {
            "create": ("POST", "/v1/agents", 201, org_id),
            "get": ("GET", "/v1/agents/{id}", 200, org_id),
            "unauthorized": ("GET", "/v1/agents", 401, None),
            "unknown": ("GET", "unmatched", 404, None),
        }
        assert live_key not in output
        assert live_key[8:24] not in output
        assert marker not in output
        # uvicorn's own access line ('"GET /v1/agents HTTP/1.1" 200') is off in favour of ours.
        assert "HTTP/1.1" not in output


@pytest.mark.system
class TestTextRequestLines:
    def test_a_readable_line_with_every_field(
        self, database_url: str, live_key: str, tmp_path: Path, servers: list[Server]
    ) -> None:
        server = start_server(served_env(database_url, "text"), tmp_path)
        servers.append(server)
        server.wait_ready()
        marker = f"body-marker-{uuid.uuid4().hex}"
        responses = run_requests(server, live_key, marker)
        created = responses["create"]

        output = stopped_output(server)

        (line,) = [line for line in output.splitlines() if created.headers["x-request-id"] in line]
        assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[info\s*\] request\s", line), line
        for field in (
            "method=POST",
            "route=/v1/agents",
            "status=201",
            f"request_id={created.headers['x-request-id']}",
            f"org_id={created.json()['org_id']}",
        ):
            assert f" {field}" in line, (field, line)
        assert re.search(r" duration_ms=\d+(\.\d+)? ", line), line
        assert not output.lstrip().startswith("{")
        assert live_key not in output
        assert marker not in output
        assert "HTTP/1.1" not in output


# Errors, in-process: a route that raises, and a handler on this test's stderr.


@pytest.fixture
def captured_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level


@pytest.fixture
async def failing_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)

    @app.get("/v1/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("boom: the cause")

    yield app
    await app.state.engine.dispose()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


class TestErrors:
    async def test_an_unhandled_error_is_logged_once_with_the_request_id(
        self,
        failing_app: FastAPI,
        captured_logging: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        configure_logging("info", "json")  # its handler writes to the captured stderr
        transport = httpx.ASGITransport(app=failing_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/v1/boom", headers={"X-Request-Id": "boom-42"})
        assert r.status_code == 500

        lines = json_lines(capsys.readouterr().err)

        errors = [line for line in lines if line["level"] == "error"]
        assert len(errors) == 1, lines
        (error,) = errors
        assert error["event"] == "unhandled error"
        assert error["request_id"] == "boom-42"
        assert "RuntimeError: boom: the cause" in error["exception"]
        assert sum("Traceback" in json.dumps(line) for line in lines) == 1
        (request,) = [line for line in lines if line["event"] == "request"]
        assert (request["route"], request["status"], request["request_id"]) == (
            "/v1/boom",
            500,
            "boom-42",
        )

    async def test_a_text_traceback_is_plain_and_shows_no_locals(
        self,
        failing_app: FastAPI,
        captured_logging: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Tracebacks never print frame locals (rich would, when installed): they can hold a
        caller's key, and rendering them for a deep stack takes seconds."""
        configure_logging("info", "text")
        transport = httpx.ASGITransport(app=failing_app)
        key = "sk_live_" + "L" * 43
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/v1/boom", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 500
        err = capsys.readouterr().err
        assert "Traceback (most recent call last):" in err
        assert "RuntimeError: boom: the cause" in err
        assert "locals" not in err
        assert key not in err
