"""Calls under load: dispatch rate, dispatch-to-terminal rate and lag, and a soak.

    python -m bench.calls            # the full run (make bench-calls)
    python -m bench.calls --smoke    # seconds, tiny numbers; fails on any error (make bench-smoke)

The server is ``callingbox-server serve`` as ``make run`` starts it (one worker, log level info,
metrics on, the runner inside it), with the sandbox's ring and talk times at 0, on a database of
its own (beside the bench's, see bench/README.md). Every call is dispatched from one outbound
agent to a number the sandbox answers, so each plays queued -> initiated -> ringing ->
in_progress -> completed and writes four events.

1. Dispatch: wrk, 16 connections, ``POST /v1/calls`` for a fixed time; then the wait until every
   call is terminal. Dispatch rate = calls / wrk's time; end-to-end rate = calls / (last
   ``ended_at`` - first ``created_at``), both as the database recorded them.
2. Lag: calls dispatched at a steady 100 a second (open loop), each call's ``ended_at -
   created_at``, p50 and p99.
3. Soak: 10,000 calls, then every call terminal and exactly its four events, once each.

Server CPU (user + system of the serve process, runner included) is reported per call: it is
steadier than rates when other work shares the machine. PostgreSQL's CPU is reported too when
the bench's embedded server is used (its processes are ours alone then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench.run import BENCH_DIR, _server_url, ensure_wrk, git_commit, hash_secret, wrk
from bench.seed import asyncpg_dsn
from bench.servers import Server, start_ours
from callingbox_server.core import migrate
from callingbox_server.domains.keys import service as keys

EVENTS = ["call.queued", "call.ringing", "call.answered", "call.completed"]
TERMINAL = ("completed", "no_answer", "busy", "canceled", "failed")
TO = "+14155550123"


@dataclass(frozen=True)
class Options:
    smoke: bool
    dispatch_seconds: float
    connections: int
    paced_rate: float
    paced_seconds: float
    soak_calls: int
    output: Path


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="seconds, tiny numbers")
    parser.add_argument("--dispatch-seconds", type=float)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, help="calls a second for the lag (default 100)")
    parser.add_argument("--paced-seconds", type=float)
    parser.add_argument("--soak", type=int, help="calls in the soak (default 10,000)")
    parser.add_argument("--output", type=Path, default=Path("bench/out"))
    args = parser.parse_args(argv)
    smoke = bool(args.smoke)
    return Options(
        smoke=smoke,
        dispatch_seconds=args.dispatch_seconds or (2.0 if smoke else 10.0),
        connections=args.connections,
        paced_rate=args.rate or (50.0 if smoke else 100.0),
        paced_seconds=args.paced_seconds or (2.0 if smoke else 10.0),
        soak_calls=args.soak or (300 if smoke else 10_000),
        output=args.output,
    )


def _database() -> str:
    """A fresh database for this run, beside the bench's others."""
    server_url = _server_url()
    name = f"callingbox_bench_calls_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(server_url))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def _drop(url: str) -> None:
    name = make_url(url).database
    admin = make_url(url).set(database="postgres").render_as_string(hide_password=False)

    async def drop() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(admin))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


async def _key(url: str, secret: bytes) -> str:
    engine = create_async_engine(url)
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            created = await keys.create_key(
                session, org_name=f"bench-calls-{uuid.uuid4().hex[:8]}", hash_secret=secret
            )
    finally:
        await engine.dispose()
    return created.secret


async def _agent(base_url: str, key: str) -> str:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        number = await http.post("/v1/numbers/purchase", json={"phone_number": "+14155550100"})
        number.raise_for_status()
        agent = await http.post(
            "/v1/agents",
            json={
                "name": "Bench",
                "type": "outbound",
                "instructions": "Confirm the appointment.",
                "returns": {"confirmed": "boolean"},
                "number_ids": [number.json()["id"]],
            },
        )
        agent.raise_for_status()
        agent_id: str = agent.json()["id"]
        return agent_id


def _postgres_cpu() -> float | None:
    """CPU seconds of the bench's embedded PostgreSQL (its processes are ours alone); None on
    an external server, which others may share."""
    if os.environ.get("CALLINGBOX_BENCH_DATABASE_URL"):
        return None
    try:
        pid = int((BENCH_DIR / "pgdata" / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        total = 0.0
        for process in [postmaster, *postmaster.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return total


class Database:
    def __init__(self, url: str) -> None:
        self.dsn = asyncpg_dsn(url)

    async def counts(self) -> tuple[int, int]:
        connection = await asyncpg.connect(self.dsn)
        try:
            row = await connection.fetchrow(
                "SELECT count(*) AS calls, count(*) FILTER (WHERE status = ANY($1::text[])) "
                "AS ended FROM calls",
                list(TERMINAL),
            )
        finally:
            await connection.close()
        assert row is not None
        return row["calls"], row["ended"]

    async def wait_terminal(self, within: float) -> int:
        deadline = time.monotonic() + within
        while True:
            calls, ended = await self.counts()
            if calls == ended:
                return calls
            if time.monotonic() > deadline:
                raise RuntimeError(f"{calls - ended} of {calls} calls not terminal after {within}s")
            await asyncio.sleep(0.2)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.dsn)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    async def span(self, since: float) -> dict[str, Any]:
        """The calls created after ``since`` (epoch seconds): count, rate and lag."""
        rows = await self.fetch(
            "SELECT extract(epoch FROM created_at) AS created, extract(epoch FROM ended_at) "
            "AS ended FROM calls WHERE extract(epoch FROM created_at) >= $1",
            since,
        )
        lags = sorted(float(r["ended"] - r["created"]) for r in rows)
        first = min(float(r["created"]) for r in rows)
        last = max(float(r["ended"]) for r in rows)
        return {
            "calls": len(rows),
            "end_to_end_per_second": len(rows) / (last - first) if last > first else 0.0,
            "lag_p50_ms": 1000 * _percentile(lags, 50),
            "lag_p99_ms": 1000 * _percentile(lags, 99),
            "lag_max_ms": 1000 * lags[-1],
        }

    async def event_faults(self) -> dict[str, int]:
        """Calls whose events are not exactly the four of a completed call, once each."""
        rows = await self.fetch(
            "SELECT c.id, c.status, array_agg(e.type ORDER BY e.created_at) "
            "FILTER (WHERE e.type IS NOT NULL) AS types "
            "FROM calls c LEFT JOIN events e ON e.call_id = c.id GROUP BY c.id, c.status"
        )
        wrong = [r for r in rows if r["status"] != "completed" or list(r["types"] or []) != EVENTS]
        doubled = [r for r in wrong if len(r["types"] or []) > len(set(r["types"] or []))]
        return {"calls": len(rows), "wrong": len(wrong), "doubled": len(doubled)}


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return values[index]


async def _paced(base_url: str, key: str, agent_id: str, rate: float, seconds: float) -> int:
    """Dispatch at ``rate`` a second (open loop: a slow answer does not delay the next call)."""
    errors = 0
    body = {"agent_id": agent_id, "to": TO}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
    ) as http:

        async def one() -> None:
            nonlocal errors
            try:
                r = await http.post("/v1/calls", json=body)
                errors += r.status_code != 201
            except httpx.HTTPError:
                errors += 1

        tasks = []
        start = time.monotonic()
        for n in range(round(rate * seconds)):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return errors


async def _soak(base_url: str, key: str, agent_id: str, calls: int, connections: int) -> int:
    errors = 0
    remaining = calls
    body = {"agent_id": agent_id, "to": TO}
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:

        async def loop() -> None:
            nonlocal errors, remaining
            while remaining > 0:
                remaining -= 1
                try:
                    r = await http.post("/v1/calls", json=body)
                    errors += r.status_code != 201
                except httpx.HTTPError:
                    errors += 1

        await asyncio.gather(*(loop() for _ in range(connections)))
    return errors


def _cpu(server: Server) -> tuple[float, float | None]:
    return server.cpu_seconds(), _postgres_cpu()


def _per_call(
    before: tuple[float, float | None], after: tuple[float, float | None], calls: int
) -> dict[str, float | None]:
    server = 1000 * (after[0] - before[0]) / calls if calls else 0.0
    pg = None if before[1] is None or after[1] is None else 1000 * (after[1] - before[1]) / calls
    return {"server_cpu_ms_per_call": server, "postgres_cpu_ms_per_call": pg}


def run(options: Options) -> dict[str, Any]:
    wrk_path = ensure_wrk()
    url = _database()
    secret = hash_secret()
    settings = {"CALLINGBOX_SANDBOX_RING_SECONDS": "0", "CALLINGBOX_SANDBOX_TALK_SECONDS": "0"}
    server = start_ours(url, secret, 1, settings=settings)
    db = Database(url)
    results: dict[str, Any] = {"options": {**asdict(options), "output": str(options.output)}}
    try:
        key = asyncio.run(_key(url, secret))
        agent_id = asyncio.run(_agent(server.base_url, key))
        with tempfile.TemporaryDirectory() as directory:
            data = Path(directory) / "dispatch.txt"
            data.write_text(f"{key} {agent_id}\n")
            since = time.time() - 1
            before = _cpu(server)
            dispatched = wrk(
                wrk_path, server, "dispatch", data, options.connections, options.dispatch_seconds
            )
            total = asyncio.run(db.wait_terminal(60))
            after = _cpu(server)
        span = asyncio.run(db.span(since))
        results["dispatch"] = {
            "connections": options.connections,
            "dispatched_per_second": dispatched.rps,
            "request_p50_ms": dispatched.p50_ms,
            "request_p99_ms": dispatched.p99_ms,
            "errors": dispatched.errors,
            **span,
            **_per_call(before, after, span["calls"]),
        }
        assert total == span["calls"], (total, span)

        since = time.time()
        before = _cpu(server)
        errors = asyncio.run(
            _paced(server.base_url, key, agent_id, options.paced_rate, options.paced_seconds)
        )
        asyncio.run(db.wait_terminal(60))
        after = _cpu(server)
        span = asyncio.run(db.span(since))
        results["paced"] = {
            "rate": options.paced_rate,
            "errors": errors,
            **span,
            **_per_call(before, after, span["calls"]),
        }

        since = time.time()
        before = _cpu(server)
        started = time.monotonic()
        errors = asyncio.run(
            _soak(server.base_url, key, agent_id, options.soak_calls, options.connections)
        )
        asyncio.run(db.wait_terminal(120))
        elapsed = time.monotonic() - started
        after = _cpu(server)
        span = asyncio.run(db.span(since))
        results["soak"] = {
            "calls": span["calls"],
            "errors": errors,
            "seconds": elapsed,
            "lag_p99_ms": span["lag_p99_ms"],
            **_per_call(before, after, span["calls"]),
            "events": asyncio.run(db.event_faults()),
        }
    finally:
        server.stop()
        _drop(url)
    results["load_average_after"] = list(os.getloadavg())
    results["commit"] = git_commit()
    return results


def failures(results: dict[str, Any], options: Options) -> list[str]:
    found = []
    for part in ("dispatch", "paced", "soak"):
        if results[part]["errors"]:
            found.append(f"{part}: {results[part]['errors']} failed requests")
    events = results["soak"]["events"]
    if events["wrong"] or events["doubled"]:
        found.append(f"soak: calls with wrong events: {events}")
    if results["soak"]["calls"] != options.soak_calls:
        found.append(f"soak: {results['soak']['calls']} calls, not {options.soak_calls}")
    return found


def targets(results: dict[str, Any]) -> dict[str, bool]:
    return {
        "dispatched >= 200/s": results["dispatch"]["dispatched_per_second"] >= 200,
        "end to end >= 200/s": results["dispatch"]["end_to_end_per_second"] >= 200,
        "p99 lag <= 1 s at 100/s": results["paced"]["lag_p99_ms"] <= 1000,
    }


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    results = run(options)
    if not options.smoke:
        results["targets"] = targets(results)
    options.output.mkdir(parents=True, exist_ok=True)
    path = options.output / ("calls-smoke.json" if options.smoke else "calls.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"bench: wrote {path}")
    found = failures(results, options)
    for failure in found:
        print(f"bench: FAILED: {failure}", file=sys.stderr)
    if not options.smoke:
        missed = [name for name, met in results["targets"].items() if not met]
        if missed:
            print(f"bench: targets missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
