"""The runner as real ``callingbox-server worker`` processes: killed with SIGKILL mid-attempt
and restarted, and two of them on one database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from callingbox_server.domains.webhooks.tasks import LEASE_SECONDS
from tests.domains.webhooks.calls import call
from tests.domains.webhooks.conftest import create_endpoint, record_event, wait_until
from tests.domains.webhooks.receivers import Reply, receiving
from tests.fixtures.servers import STOP_TIMEOUT, server_env
from tests.fixtures.tenants import Tenant

pytestmark = pytest.mark.system
READY_SECONDS = 60.0


class Workers:
    """``callingbox-server worker`` processes of one test; all stopped at its end."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.env = server_env(
            database_url,
            log_level="info",
            webhook_retry_scale="0.0005",
            webhook_allow_private="true",
            worker_poll_interval="0.5",
        )
        self.directory = directory
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.directory / f"worker-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "callingbox_server.cli", "worker"],
                env=self.env,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append((process, log))
        deadline = time.monotonic() + READY_SECONDS
        while "worker started" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.05)
        return process

    def log(self, index: int) -> str:
        return self.processes[index][1].read_text()

    def close(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture
def workers(hooks_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(hooks_database_url, tmp_path)
    yield started
    started.close()


async def send_event(org: Tenant, hooks_engine: AsyncEngine) -> uuid.UUID:
    call_id = uuid.uuid4()
    data = {"call": call(org.org_id, call_id, "call.completed", None)}
    await record_event(hooks_engine, org.org_id, "call.completed", data, call_id)
    return call_id


async def deliveries(org: Tenant, status: str) -> list[dict[str, Any]]:
    r = await org.client.get("/v1/webhook_deliveries", params={"status": status, "limit": 200})
    found: list[dict[str, Any]] = r.json()["data"]
    return found


class TestSigkill:
    async def test_killed_mid_attempt_then_restarted_delivers_with_one_repeat(
        self, org: Tenant, hooks_engine: AsyncEngine, workers: Workers
    ) -> None:
        # The first request hangs (the worker is killed while it waits); the repeat succeeds.
        with receiving(lambda n: Reply(200, delay=30.0 if n == 0 else 0.0)) as receiver:
            await create_endpoint(org, receiver.url)
            first = workers.start()
            await send_event(org, hooks_engine)
            await receiver.wait_for(1)

            first.send_signal(signal.SIGKILL)
            first.wait(timeout=STOP_TIMEOUT)
            workers.start()

            # Due again when the killed runner's lease ends.
            got = await receiver.wait_for(2, within=LEASE_SECONDS + 15)
            (delivered,) = await wait_until(lambda: deliveries(org, "delivered"))

            assert got[0].body == got[1].body
            assert delivered["attempt_count"] == 1  # the killed attempt was never recorded
            assert await receiver.quiet_for(0.5) == 2  # at most one repeat


async def attempt_log(engine: AsyncEngine, org: Tenant) -> list[Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT response_status, error FROM webhook_attempts WHERE org_id = :org"),
            {"org": org.org_id},
        )
        return list(rows)


class TestTwoRunners:
    async def test_no_delivery_is_attempted_twice_at_once(
        self, org: Tenant, hooks_engine: AsyncEngine, workers: Workers
    ) -> None:
        # Slow answers, two failures then success: many claims race between the two runners.
        def script(n: int) -> Reply:
            return Reply(500 if n < 40 else 200, delay=0.05)

        with receiving(script) as receiver:
            await create_endpoint(org, receiver.url)
            workers.start()
            workers.start()
            for _ in range(20):
                await send_event(org, hooks_engine)

            async def all_delivered() -> bool:
                return len(await deliveries(org, "delivered")) == 20

            await wait_until(all_delivered, within=60)

            assert receiver.overlaps == 0
            assert len(receiver.received) >= 60
            recorded = sum(d["attempt_count"] for d in await deliveries(org, "delivered"))
            # Every attempt counted once, and logged once. An attempt that failed before the
            # receiver read it (a kept-alive connection closed under it, on a loaded machine)
            # is an attempt too; every one that arrived was answered and logged with its status.
            attempts = await attempt_log(hooks_engine, org)
            assert recorded == len(attempts)
            answered = [a for a in attempts if a.response_status is not None]
            unanswered = [a.error for a in attempts if a.response_status is None]
            assert len(answered) == len(receiver.received), unanswered
            assert all(unanswered), unanswered  # each says why no answer came
            assert "webhook attempt" in workers.log(0)
            assert "webhook attempt" in workers.log(1)
