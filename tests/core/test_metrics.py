"""GET /metrics: Prometheus text, counts by route template, the pool, build info, workers."""

from __future__ import annotations

import asyncio
import os
import platform
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from callingbox_server.api.app import create_app
from callingbox_server.core import metrics
from callingbox_server.core.config import Settings
from tests.fixtures.database import HASH_SECRET
from tests.fixtures.servers import HTTP_TIMEOUT, Server, server_env, start_server
from tests.fixtures.tenants import Tenant

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_total(samples: Samples, method: str, route: str, status: str) -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return samples.get(("callingbox_http_requests_total", labels), 0.0)


def durations_count(samples: Samples, method: str, route: str, status: str) -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return samples.get(("callingbox_http_request_duration_seconds_count", labels), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    return parse(r.text)


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


class TestEndpoint:
    async def test_is_prometheus_text_without_a_key(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/metrics")

        assert r.status_code == 200
        assert re.fullmatch(r"text/plain; version=[\d.]+; charset=utf-8", r.headers["content-type"])
        assert "# TYPE callingbox_http_requests_total counter" in r.text
        assert "# TYPE callingbox_http_request_duration_seconds histogram" in r.text
        assert "process_cpu_seconds_total" in r.text  # the process metrics, one process

    async def test_openmetrics_when_asked_for(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})

        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/openmetrics-text;")
        assert r.text.endswith("# EOF\n")

    async def test_build_info(self, client: httpx.AsyncClient) -> None:
        samples = await scrape(client)

        labels = (("python", platform.python_version()), ("version", version("callingbox-server")))
        assert samples[("callingbox_build_info", labels)] == 1.0

    async def test_is_left_out_of_the_openapi_document(self, client: httpx.AsyncClient) -> None:
        document = (await client.get("/openapi.json")).json()

        assert "/metrics" not in document["paths"]

    async def test_can_be_disabled(self, settings: Settings) -> None:
        app = create_app(settings.model_copy(update={"metrics_enabled": False}))
        async with client_of(app) as client:
            r = await client.get("/metrics")
        await app.state.engine.dispose()

        assert r.status_code == 404
        assert r.json()["code"] == "not_found"


class TestRequestCounts:
    async def test_by_method_route_template_and_status(
        self, client: httpx.AsyncClient, tenant: Tenant
    ) -> None:
        before = await scrape(client)
        for _ in range(2):
            assert (await tenant.client.get("/v1/agents")).status_code == 200
        created = await tenant.client.post("/v1/agents", json={"name": "A", "type": "inbound"})
        # Served by api.direct (the org is known by now): counted under the same template.
        assert (await tenant.client.get(f"/v1/agents/{created.json()['id']}")).status_code == 200
        assert (await tenant.client.get("/v1/agents/not-an-id")).status_code == 404
        assert (await tenant.client.get(f"/v1/numbers/{os.urandom(4).hex()}")).status_code == 404
        assert (await client.get("/v1/agents")).status_code == 401
        assert (await client.get("/no/such/path")).status_code == 404
        assert (await client.request("BREW", "/v1/agents")).status_code == 405
        after = await scrape(client)

        expected = {
            ("GET", "/v1/agents", "200"): 2,
            ("POST", "/v1/agents", "201"): 1,
            ("GET", "/v1/agents/{id}", "200"): 1,
            ("GET", "/v1/agents/{id}", "404"): 1,
            ("GET", "/v1/numbers/{id}", "404"): 1,  # the template, not "{id:number_id}"
            ("GET", "/v1/agents", "401"): 1,
            ("GET", "unmatched", "404"): 1,
            ("other", "/v1/agents", "405"): 1,  # a method nobody serves is not a label of its own
            ("GET", "/metrics", "200"): 1,  # the first scrape
        }
        for labels, count in expected.items():
            assert requests_total(after, *labels) - requests_total(before, *labels) == count, labels
            assert durations_count(after, *labels) - durations_count(before, *labels) == count


@pytest.fixture
async def small_pool_app(database_url: str) -> AsyncIterator[FastAPI]:
    """An app whose pool holds one connection and opens no more."""
    settings = Settings(
        database_url=database_url,
        key_hash_secret=HASH_SECRET,
        db_pool_size=1,
        db_max_overflow=0,
        db_connect_timeout=30,
    )
    app = create_app(settings)
    yield app
    await app.state.engine.dispose()


def pool_gauges(samples: Samples) -> tuple[float, float]:
    return (
        samples[("callingbox_db_pool_connections_in_use", ())],
        samples[("callingbox_db_pool_waiting", ())],
    )


class TestDatabasePool:
    async def test_in_use_and_waiting(self, small_pool_app: FastAPI) -> None:
        engine = small_pool_app.state.engine
        async with client_of(small_pool_app) as client:
            assert pool_gauges(await scrape(client)) == (0, 0)
            held = await engine.connect()
            assert pool_gauges(await scrape(client)) == (1, 0)

            async def second_connection() -> None:
                async with engine.connect():
                    pass

            waiter = asyncio.create_task(second_connection())
            for _ in range(1000):  # until the waiter is parked in the pool
                await asyncio.sleep(0)
                if pool_gauges(await scrape(client)) == (1, 1):
                    break
            assert pool_gauges(await scrape(client)) == (1, 1)

            await held.close()
            await waiter

            assert pool_gauges(await scrape(client)) == (0, 0)


# Several workers: whichever one answers a scrape reports every worker's counts.


class TestPrepareMultiprocessDir:
    def test_one_worker_needs_none(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(metrics.MULTIPROC_DIR_ENV, raising=False)

        metrics.prepare_multiprocess_dir(1)

        assert metrics.MULTIPROC_DIR_ENV not in os.environ

    def test_several_workers_get_an_empty_directory(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(metrics.MULTIPROC_DIR_ENV, raising=False)

        metrics.prepare_multiprocess_dir(2)

        path = Path(os.environ.pop(metrics.MULTIPROC_DIR_ENV))
        assert path.is_dir()
        assert list(path.iterdir()) == []

    def test_an_operators_directory_is_emptied_of_old_values(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        (tmp_path / "counter_12345.db").write_bytes(b"old")
        (tmp_path / "keep.txt").write_text("not ours")
        monkeypatch.setenv(metrics.MULTIPROC_DIR_ENV, str(tmp_path))

        metrics.prepare_multiprocess_dir(1)

        assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]


def start_workers(env: dict[str, str], cwd: Path, name: str) -> Server:
    return start_server(env, cwd, name, options=["--workers", "2"])


@pytest.fixture
def workers_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return server_env(database_url) | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}


def get_agents(base_url: str, key: str) -> int:
    # A connection per request, so that the kernel hands them to either worker.
    headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
    return httpx.get(f"{base_url}/v1/agents", headers=headers, timeout=HTTP_TIMEOUT).status_code


def scrape_live(base_url: str) -> Samples:
    r = httpx.get(f"{base_url}/metrics", headers={"Connection": "close"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    return parse(r.text)


REQUESTS = 60


@pytest.mark.system
class TestSeveralWorkers:
    def test_every_scrape_adds_up_every_worker(
        self,
        workers_env: dict[str, str],
        live_key: str,
        tmp_path: Path,
        servers: list[Server],
    ) -> None:
        directory = Path(workers_env["PROMETHEUS_MULTIPROC_DIR"])
        directory.mkdir()
        # A file from an earlier run that `serve` must clear: unreadable, it would break scrapes.
        (directory / "counter_999999.db").write_bytes(b"stale")
        server = start_workers(workers_env, tmp_path, "workers")
        servers.append(server)
        server.wait_ready()

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: get_agents(server.base_url, live_key), range(REQUESTS))
            )
        assert statuses == [200] * REQUESTS

        counter_files = {path.name for path in directory.glob("counter_*.db")}
        assert "counter_999999.db" not in counter_files
        assert len(counter_files) == 2, f"both workers should have answered: {counter_files}"
        for _ in range(6):  # scrapes land on either worker; each must see the total
            samples = scrape_live(server.base_url)
            assert requests_total(samples, "GET", "/v1/agents", "200") == REQUESTS
            assert durations_count(samples, "GET", "/v1/agents", "200") == REQUESTS
            assert samples[("callingbox_db_pool_waiting", ())] == 0
        server.stop()

        # A restart on the same directory starts counting from zero.
        again = start_workers(workers_env, tmp_path, "again")
        servers.append(again)
        again.wait_ready()
        assert get_agents(again.base_url, live_key) == 200
        assert requests_total(scrape_live(again.base_url), "GET", "/v1/agents", "200") == 1
