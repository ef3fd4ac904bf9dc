"""``make bench``: seed, serve, load with wrk, and report ours against the raw asyncpg baseline.

    python -m bench.run                    # 10,000 agents per org, 1 then 2 workers
    python -m bench.run --agents 1000000   # loaded with COPY; kept for the next run
    python -m bench.run --smoke            # tiny N, seconds per scenario; fails on any error

The database is the bench's own: CALLINGBOX_BENCH_DATABASE_URL (any database on that server;
the bench creates ``callingbox_bench_<N>`` beside it), else an embedded PostgreSQL in
.callingbox/bench, apart from the development and test data. Results go to bench/out/ (a JSON
file and a markdown table); the exit status is 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import make_url

from bench import edge, report
from bench.seed import Dataset, asyncpg_dsn, seed
from bench.servers import ROOT, RssSampler, Server, start_baseline, start_ours
from callingbox_server.core import migrate
from callingbox_server.core.config import to_asyncpg_url

BENCH_DIR = ROOT / ".callingbox" / "bench"
LUA = Path(__file__).with_name("load.lua")
# Ours as make run serves it, ours at log level warning, and the two baselines.
OURS = ("ours", "ours_warning")
SERVERS = (*OURS, "baseline", "baseline_pg")


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str
    connections: int
    baseline: bool  # the baseline answers it too: measured alternately, reported as a ratio
    title: str


SCENARIOS = (
    Scenario("get_agent_c32", "get_agent", 32, True, "GET /v1/agents/{id}"),
    Scenario("get_agent_c8", "get_agent", 8, True, "GET /v1/agents/{id}"),
    Scenario("list_c32", "list", 32, True, "GET /v1/agents?limit=20"),
    Scenario("list_deep_c32", "list_deep", 32, True, "GET /v1/agents?limit=20&starting_after=deep"),
    Scenario("create_c16", "create", 16, False, "POST /v1/agents"),
    Scenario(
        "attach_detach_c16", "attach_detach", 16, False, "POST+DELETE /v1/agents/{id}/numbers"
    ),
    Scenario("numbers_c32", "numbers", 32, False, "GET /v1/numbers"),
)


QUERY_FLOOD = "query_flood"  # bench/edge.py: one request of 10,000 query parameters


@dataclass
class Options:
    agents: int
    workers: list[int]
    duration: float
    warmup: float
    rounds: int
    memory_marks: list[int]
    smoke: bool
    output: Path
    scenarios: list[str]


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, help="agents per org (default 10,000; smoke 200)")
    parser.add_argument("--workers", default="1,2", help="server worker counts to run, e.g. 1,2")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per scenario and server")
    parser.add_argument("--rounds", type=int, help="alternations of ours and baseline (default 3)")
    parser.add_argument(
        "--memory",
        default=None,
        help="request counts at which RSS is read (default 50000,250000; 'none' skips it)",
    )
    parser.add_argument(
        "--scenarios",
        help=f"comma-separated subset of {', '.join(s.name for s in SCENARIOS)}, {QUERY_FLOOD}",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny N, seconds per scenario")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("out"))
    args = parser.parse_args(argv)
    smoke = bool(args.smoke)
    known = [s.name for s in SCENARIOS] + [QUERY_FLOOD]
    chosen = args.scenarios.split(",") if args.scenarios else known
    if unknown := set(chosen) - set(known):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    memory = args.memory or ("2000,6000" if smoke else "50000,250000")
    return Options(
        agents=args.agents or (200 if smoke else 10_000),
        workers=[int(w) for w in args.workers.split(",")],
        duration=args.duration or (2.0 if smoke else 10.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if smoke else 2.0),
        rounds=args.rounds or (1 if smoke else 3),
        memory_marks=[] if memory == "none" else sorted(int(m) for m in memory.split(",")),
        smoke=smoke,
        output=args.output,
        scenarios=chosen,
    )


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk is missing; installing Debian's package (apt-get install wrk)")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "wrk"], env=env).returncode:
        subprocess.run([*prefix, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk could not be installed; install it and run again")
    return found


def _server_url() -> str:
    external = os.environ.get("CALLINGBOX_BENCH_DATABASE_URL")
    if external:
        return to_asyncpg_url(external)
    from callingbox_server.core.runtime import start_embedded_postgres

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    return start_embedded_postgres(BENCH_DIR)


async def _ensure_database(server_url: str, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def bench_database(agents: int) -> str:
    server_url = _server_url()
    name = f"callingbox_bench_{agents}"
    asyncio.run(_ensure_database(server_url, name))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return url


def hash_secret() -> bytes:
    """Stable across runs, so that a kept dataset's orgs can get keys the server accepts."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / "key_hash_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def write_data_files(dataset: Dataset, directory: Path) -> dict[str, Path]:
    """What load.lua reads: one line per request template, key first."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = {
        "get_agent": [f"{o.key} {i}" for o in dataset.orgs for i in o.agent_ids],
        "list": [o.key for o in dataset.orgs],
        "list_deep": [f"{o.key} {i}" for o in dataset.orgs for i in o.deep_ids],
        "numbers": [o.key for o in dataset.orgs],
        "create": [dataset.writer.key],
        "attach_detach": [f"{dataset.orgs[0].key} {a} {n}" for a, n in dataset.pairs],
    }
    lines["mixed"] = lines["get_agent"]
    paths = {}
    for mode, rows in lines.items():
        path = directory / f"{mode}.txt"
        path.write_text("\n".join(rows) + "\n")
        paths[mode] = path
    return paths


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    # Server CPU per request: steadier than requests/s when other work shares the machine.
    cpu_ms_per_request: float = 0.0
    rss_peak: list[int] = field(default_factory=list)
    rss_last: list[int] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


_pair_offsets = itertools.count()


def wrk(
    wrk_path: str, server: Server, mode: str, data: Path, connections: int, seconds: float
) -> WrkResult:
    # attach_detach pairs each thread with one connection and one (agent, number) pair.
    threads = connections if mode == "attach_detach" else min(2, connections)
    command = [
        wrk_path,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"{server.base_url}/",
    ]
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_DATA": str(data)}
    if mode == "attach_detach":
        env["BENCH_PAIR_OFFSET"] = str(next(_pair_offsets) * connections)
    cpu_before = server.cpu_seconds()
    with RssSampler(server) as sampler:
        completed = subprocess.run(command, env=env, capture_output=True, text=True)
    cpu = server.cpu_seconds() - cpu_before
    if completed.stderr.strip():
        sys.stderr.write(completed.stderr)
    line = next(
        (ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None
    )
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds_run = raw["duration_us"] / 1e6
    return WrkResult(
        requests=raw["requests"],
        seconds=seconds_run,
        rps=raw["requests"] / seconds_run if seconds_run else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        non2xx=raw["non2xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        cpu_ms_per_request=1000 * cpu / raw["requests"] if raw["requests"] else 0.0,
        rss_peak=sampler.peak,
        rss_last=sampler.last,
    )


def _connections(scenario: Scenario, dataset: Dataset) -> int:
    if scenario.mode == "attach_detach":
        return min(scenario.connections, len(dataset.pairs))
    return scenario.connections


def run_workers(
    options: Options,
    wrk_path: str,
    url: str,
    secret: bytes,
    dataset: Dataset,
    data: dict[str, Path],
    workers: int,
) -> dict[str, Any]:
    print(f"bench: {workers} worker(s): starting callingbox-server (twice) and both baselines")
    key = dataset.orgs[0].key
    starts: dict[str, Callable[[], Server]] = {
        # As make run serves: info level (an access line per request) and metrics.
        "ours": lambda: start_ours(url, secret, workers),
        "ours_warning": lambda: start_ours(url, secret, workers, log_level="warning"),
        "baseline": lambda: start_baseline(url, secret, workers, key),
        "baseline_pg": lambda: start_baseline(url, secret, workers, key, module="baseline_pg"),
    }
    servers: dict[str, Server] = {}
    results: dict[str, Any] = {"workers": workers, "scenarios": {}}
    try:
        for name, start in starts.items():
            servers[name] = start()
        rss_idle = {name: server.rss_per_worker() for name, server in servers.items()}
        results["rss_idle"] = rss_idle
        for scenario in (s for s in SCENARIOS if s.name in options.scenarios):
            connections = _connections(scenario, dataset)
            names = list(SERVERS if scenario.baseline else OURS)
            if options.warmup > 0:
                for name in names:
                    wrk(
                        wrk_path,
                        servers[name],
                        scenario.mode,
                        data[scenario.mode],
                        connections,
                        options.warmup,
                    )
            runs: dict[str, list[WrkResult]] = {name: [] for name in names}
            for round_ in range(options.rounds):
                # Rotate who goes first, so that drift on a shared machine hits all alike.
                shift = round_ % len(names)
                order = names[shift:] + names[:shift]
                for name in order:
                    result = wrk(
                        wrk_path,
                        servers[name],
                        scenario.mode,
                        data[scenario.mode],
                        connections,
                        options.duration,
                    )
                    runs[name].append(result)
                    print(
                        f"  {scenario.name:18} {name:12} round {round_ + 1}: {result.rps:6.0f} rps"
                        f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                        f"  cpu {result.cpu_ms_per_request:5.2f} ms/req  errors {result.errors}"
                    )
            results["scenarios"][scenario.name] = {
                "title": scenario.title,
                "connections": connections,
                "runs": {name: [asdict(r) for r in rs] for name, rs in runs.items()},
            }
    finally:
        for server in servers.values():
            server.stop()
    return results


def memory_growth(
    options: Options, wrk_path: str, url: str, secret: bytes, data: Path
) -> dict[str, Any]:
    """RSS of each worker of a fresh server once it has served each mark's number of requests
    (a mixed read load: agents, agent pages, number pages)."""
    workers = options.workers[0]
    print(f"bench: memory: {workers} worker(s), mixed reads until {options.memory_marks} requests")
    total, errors, segment = 0, 0, 5.0
    readings: list[dict[str, Any]] = []
    server = start_ours(url, secret, workers)
    try:
        for mark in options.memory_marks:
            while total < mark:
                result = wrk(wrk_path, server, "mixed", data, 16, segment)
                total += result.requests
                errors += result.errors
                # Aim the next segment at the mark (at least a second, at most thirty).
                remaining = mark - total
                if result.rps > 0 and remaining > 0:
                    segment = min(30.0, max(1.0, remaining / result.rps))
            rss = server.rss_per_worker()
            readings.append({"requests": total, "rss": rss})
            print(f"  after {total:,} requests: RSS {[r // 2**20 for r in rss]} MiB")
    finally:
        server.stop()
    first, last = sum(readings[0]["rss"]), sum(readings[-1]["rss"])
    growth = (last - first) / first if first else 0.0
    return {"workers": workers, "readings": readings, "growth": growth, "errors": errors}


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    import psutil

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
    }


def git_commit() -> str:
    completed = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return completed.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    wrk_path = ensure_wrk()
    url = bench_database(options.agents)
    secret = hash_secret()
    started = time.monotonic()
    dataset = asyncio.run(seed(url, secret, options.agents))
    how = "kept from an earlier run" if dataset.reused else "seeded"
    elapsed = time.monotonic() - started
    print(f"bench: dataset of {options.agents:,} agents per org ({how} in {elapsed:.1f}s)")
    data = write_data_files(dataset, options.output / "data")
    before = machine()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "options": {**asdict(options), "output": str(options.output)},
        "machine": before,
        "database": "external (CALLINGBOX_BENCH_DATABASE_URL)"
        if os.environ.get("CALLINGBOX_BENCH_DATABASE_URL")
        else "embedded PostgreSQL (.callingbox/bench)",
        "workers": [
            run_workers(options, wrk_path, url, secret, dataset, data, workers)
            for workers in options.workers
        ],
    }
    if options.memory_marks:
        results["memory"] = memory_growth(options, wrk_path, url, secret, data["mixed"])
    if QUERY_FLOOD in options.scenarios:
        results["edge"] = edge.measure(url, secret, dataset.orgs[0].key, options.smoke)
    results["load_average_after"] = list(os.getloadavg())
    summary = report.summarize(results)
    results["summary"] = summary
    stem = "smoke" if options.smoke else f"bench-{options.agents}"
    json_path = options.output / f"{stem}.json"
    markdown_path = options.output / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    markdown_path.write_text(markdown)
    print()
    print(markdown)
    print(f"bench: wrote {json_path} and {markdown_path}")
    failures = report.failures(results)
    for failure in failures:
        print(f"bench: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
