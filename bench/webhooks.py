"""``make bench-webhooks``: webhook delivery lag, event commit to receiver, at a steady rate.

    python -m bench.webhooks                     # 200 events/s for 20 s, then again with a
                                                 # second receiver that hangs 10 s per request;
                                                 # three such rounds, medians reported
    python -m bench.webhooks --rate 400 --duration 30
    python -m bench.webhooks --smoke             # 2 s at 50 events/s; fails on a lost delivery

One ``callingbox-server worker`` process delivers (the target is for one); events are committed
as the calls domain commits them (an ``events`` row and its NOTIFY in one transaction), each
with a Call envelope, to one org with one ``"*"`` endpoint on a local receiver. The lag of a
delivery is the receiver's clock when the request has arrived minus the producer's clock when
the event's COMMIT returned (one machine, one clock). Targets (issue 12): p50 <= 50 ms and
p99 <= 250 ms at 200 events/s, zero lost, and the hanging receiver raises the healthy one's p99
by at most 2x. The database is the bench's own (CALLINGBOX_BENCH_DATABASE_URL, else the embedded
PostgreSQL in .callingbox/bench), in a ``callingbox_bench_webhooks`` database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from sqlalchemy import make_url

from bench.run import _ensure_database, _server_url, hash_secret
from bench.seed import asyncpg_dsn
from bench.servers import ROOT
from callingbox_server.core import migrate

DATABASE = "callingbox_bench_webhooks"
OUTPUT = Path(__file__).with_name("out")
DRAIN_SECONDS = 30.0
HANG_SECONDS = 10.0
READY_SECONDS = 60.0
# BENCH_WORKER_PROFILE=/tmp/worker.prof: run the worker under cProfile (for finding hot spots).
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_WORKER_PROFILE"]]
    if os.environ.get("BENCH_WORKER_PROFILE")
    else []
)


class Receiver:
    """A local receiver: records when each delivery id arrived; ``hang`` holds every request."""

    def __init__(self, hang: float = 0.0) -> None:
        self.arrived: dict[str, float] = {}
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                event = json.loads(body)["data"]["call"]["metadata"]["bench_event"]
                with receiver._lock:
                    receiver.requests += 1
                    receiver.arrived.setdefault(event, at)
                if hang:
                    time.sleep(hang)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the worker gave up on a hanging request

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass(frozen=True)
class Result:
    scenario: str
    worker_cpu_ms_per_event: float
    rate: float
    events: int
    delivered: int
    lost: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def database_url() -> str:
    server = _server_url()
    asyncio.run(_ensure_database(server, DATABASE))
    url = make_url(server).set(database=DATABASE).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


@contextmanager
def worker(url: str, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLINGBOX_")}
    env |= {
        "CALLINGBOX_DATABASE_URL": url,
        "CALLINGBOX_KEY_HASH_SECRET": hash_secret().decode(),
        "CALLINGBOX_WEBHOOK_ALLOW_PRIVATE": "true",
        "CALLINGBOX_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "warning"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "webhooks-worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, *PROFILE, "-m", "callingbox_server.cli", "worker"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def envelope(org_id: uuid.UUID, call_id: uuid.UUID, event: str) -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    call = {
        "id": str(call_id),
        "org_id": str(org_id),
        "status": "completed",
        "webhook_url": None,
        "webhook_status": "pending",
        "metadata": {"bench_event": event},
        "created_at": now,
        "updated_at": now,
    }
    return json.dumps({"call": call}, separators=(",", ":"))


async def setup(dsn: str, urls: list[str]) -> uuid.UUID:
    """A fresh org with one "*" endpoint per receiver; earlier runs' work is cleared away."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE webhook_deliveries SET status = 'exhausted', next_attempt_at = NULL "
            "WHERE status = 'pending'"
        )
        await connection.execute(
            "UPDATE events SET webhooks_fanned_out_at = now() WHERE webhooks_fanned_out_at IS NULL"
        )
        org_id = uuid.uuid4()
        await connection.execute(
            "INSERT INTO orgs (id, name) VALUES ($1, $2)", org_id, f"bench-{org_id.hex[:12]}"
        )
        for url in urls:
            await connection.execute(
                "INSERT INTO webhook_endpoints (id, org_id, url, enabled_events) "
                "VALUES ($1, $2, $3, '{*}')",
                uuid.uuid4(),
                org_id,
                url,
            )
        return org_id
    finally:
        await connection.close()


async def produce(dsn: str, org_id: uuid.UUID, rate: float, duration: float) -> dict[str, float]:
    """Commit events at ``rate`` per second (four connections); returns each one's commit time."""
    committed: dict[str, float] = {}
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=4)
    total = int(rate * duration)
    start = time.monotonic()

    async def one(n: int) -> None:
        event = f"e{n}"
        call_id = uuid.uuid4()
        async with pool.acquire() as connection, connection.transaction():
            event_id = uuid.uuid4()
            await connection.execute(
                "INSERT INTO events (id, org_id, type, call_id, data) "
                "VALUES ($1, $2, 'call.completed', $3, $4::json)",
                event_id,
                org_id,
                call_id,
                envelope(org_id, call_id, event),
            )
            await connection.execute("SELECT pg_notify('callingbox_events', $1)", str(event_id))
        committed[event] = time.time()

    try:
        tasks = []
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
    return committed


async def wait_ready(dsn: str, receiver: Receiver, org_id: uuid.UUID) -> None:
    """One warm-up event through the worker: it is up and listening."""
    deadline = time.monotonic() + READY_SECONDS
    committed = await produce(dsn, org_id, 10.0, 0.1)
    while not set(committed) <= set(receiver.arrived):
        if time.monotonic() > deadline:
            raise SystemExit("bench: the worker delivered nothing; see its log in bench/out")
        await asyncio.sleep(0.05)
    receiver.arrived.clear()


def measure(dsn: str, url: str, name: str, rate: float, duration: float, hang: bool) -> Result:
    healthy = Receiver()
    hanging = Receiver(hang=HANG_SECONDS) if hang else None
    try:
        urls = [healthy.url] + ([hanging.url] if hanging else [])
        org_id = asyncio.run(setup(dsn, urls))
        with worker(url, OUTPUT) as process:
            asyncio.run(wait_ready(dsn, healthy, org_id))
            cpu_before = _cpu_seconds(process.pid)
            committed = asyncio.run(produce(dsn, org_id, rate, duration))
            deadline = time.monotonic() + DRAIN_SECONDS
            while not set(committed) <= set(healthy.arrived) and time.monotonic() < deadline:
                time.sleep(0.1)
            cpu = _cpu_seconds(process.pid) - cpu_before
        arrived = healthy.arrived
        lags = [(arrived[e] - t) * 1000 for e, t in committed.items() if e in arrived]
        lost = len(committed) - len(lags)
        return Result(
            name,
            round(cpu * 1000 / max(1, len(committed)), 2),
            rate,
            len(committed),
            len(lags),
            lost,
            round(statistics.median(lags), 1) if lags else float("nan"),
            round(percentile(lags, 0.90), 1) if lags else float("nan"),
            round(percentile(lags, 0.99), 1) if lags else float("nan"),
            round(max(lags), 1) if lags else float("nan"),
        )
    finally:
        healthy.close()
        if hanging is not None:
            hanging.close()


def summary(rounds: list[list[Result]]) -> list[tuple[str, str, str, bool]]:
    """The targets, from the medians over rounds; the ratio is the median of per-round ratios
    (each round runs both scenarios back to back, so a noisy minute hits one ratio, not all)."""
    healthy = [r[0] for r in rounds]
    p50 = statistics.median(r.p50_ms for r in healthy)
    p99 = statistics.median(r.p99_ms for r in healthy)
    lost = sum(r.lost for both in rounds for r in both)
    rows = [
        ("healthy p50 ms (median of rounds)", f"{p50:.1f}", "<= 50", p50 <= 50),
        ("healthy p99 ms (median of rounds)", f"{p99:.1f}", "<= 250", p99 <= 250),
        ("lost deliveries (all rounds)", str(lost), "0", lost == 0),
    ]
    if all(len(both) == 2 for both in rounds):
        ratios = [both[1].p99_ms / both[0].p99_ms for both in rounds]
        ratio = statistics.median(ratios)
        each = ", ".join(f"{x:.2f}" for x in ratios)
        rows.append(
            (f"p99 with a hanging receiver / without ({each})", f"{ratio:.2f}", "<= 2", ratio <= 2)
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--rate", type=float, help="events per second (default 200; smoke 50)")
    parser.add_argument("--duration", type=float, help="seconds of events (default 20; smoke 2)")
    parser.add_argument("--rounds", type=int, help="rounds of both scenarios (default 3; smoke 1)")
    parser.add_argument("--smoke", action="store_true", help="seconds-long, no hanging receiver")
    args = parser.parse_args(argv)
    rate = args.rate or (50.0 if args.smoke else 200.0)
    duration = args.duration or (2.0 if args.smoke else 20.0)
    count = args.rounds or (1 if args.smoke else 3)
    url = database_url()
    dsn = asyncpg_dsn(url)
    rounds = []
    for _ in range(count):
        both = [measure(dsn, url, "healthy", rate, duration, hang=False)]
        if not args.smoke:
            both.append(measure(dsn, url, "with a hanging receiver", rate, duration, hang=True))
        rounds.append(both)
    OUTPUT.mkdir(exist_ok=True)
    stem = "webhooks-smoke" if args.smoke else "webhooks"
    targets = summary(rounds)
    document = {
        "rounds": [[r.__dict__ for r in both] for both in rounds],
        "targets": [{"target": t, "value": v, "goal": g, "met": m} for t, v, g, m in targets],
    }
    (OUTPUT / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    print(
        "| round | scenario | events/s | events | delivered | lost | p50 ms | p90 ms | p99 ms "
        "| max ms | worker CPU ms/event |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, both in enumerate(rounds, 1):
        for r in both:
            print(
                f"| {n} | {r.scenario} | {r.rate:g} | {r.events} | {r.delivered} | {r.lost} | "
                f"{r.p50_ms} | {r.p90_ms} | {r.p99_ms} | {r.max_ms} | "
                f"{r.worker_cpu_ms_per_event} |"
            )
    print()
    print("| target | value | goal | met |")
    print("|---|---:|---|---|")
    for target, value, goal, met in targets:
        print(f"| {target} | {value} | {goal} | {'yes' if met else 'NO'} |")
    failed = [r for both in rounds for r in both if r.lost]
    for r in failed:
        print(f"bench: FAILED: {r.scenario}: {r.lost} deliveries lost", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
