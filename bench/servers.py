"""The two servers under load, started as a user starts them, and their memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
# Two workers on a loaded 2-core machine took over a minute to answer /readyz.
READY_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    workers: int
    process: subprocess.Popen[bytes]
    base_url: str

    def worker_processes(self) -> list[psutil.Process]:
        """The processes that serve requests: the server itself with one worker, else the
        children uvicorn spawned (not its supervisor, nor multiprocessing's helpers)."""
        parent = psutil.Process(self.process.pid)
        if self.workers == 1:
            return [parent]
        workers = []
        for child in parent.children(recursive=True):
            try:
                command = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "spawn_main" in command and "resource_tracker" not in command:
                workers.append(child)
        return workers

    def rss_per_worker(self) -> list[int]:
        sizes = []
        for process in self.worker_processes():
            try:
                sizes.append(process.memory_info().rss)
            except psutil.Error:
                continue
        return sorted(sizes)

    def cpu_seconds(self) -> float:
        """User and system CPU the workers have used so far."""
        total = 0.0
        for process in self.worker_processes():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_ready(server: Server, path: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}")
        try:
            response = httpx.get(server.base_url + path, headers=headers, timeout=2)
            if response.status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not become ready in {READY_TIMEOUT:.0f}s")
        time.sleep(0.2)
    # With several workers, one answering says nothing of the others: wait until all are up.
    while len(server.worker_processes()) < server.workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: fewer than {server.workers} workers came up")
        time.sleep(0.2)


def start_ours(
    database_url: str,
    hash_secret: bytes,
    workers: int,
    log_level: str | None = None,
    settings: dict[str, str] | None = None,
) -> Server:
    """``callingbox-server serve`` as ``make run`` starts it (its default log level, an access
    line per request, metrics on), or at ``log_level``, with ``settings`` (more ``CALLINGBOX_``
    variables); its output goes nowhere."""
    port = free_port()
    env = {
        **os.environ,
        "CALLINGBOX_DATABASE_URL": database_url,
        "CALLINGBOX_KEY_HASH_SECRET": hash_secret.decode(),
    }
    for name in ("CALLINGBOX_LOG_LEVEL", "CALLINGBOX_METRICS_ENABLED", "CALLINGBOX_LOG_FORMAT"):
        env.pop(name, None)
    if log_level is not None:
        env["CALLINGBOX_LOG_LEVEL"] = log_level
    env |= settings or {}
    command = [
        str(Path(sys.executable).with_name("callingbox-server")),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    # The access lines are written as make run writes them (to stderr), then thrown away.
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    server = Server("callingbox-server", workers, process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, "/readyz", {})
    except BaseException:
        server.stop()
        raise
    return server


def start_baseline(
    database_url: str, hash_secret: bytes, workers: int, key: str, module: str = "baseline"
) -> Server:
    """A baseline (``bench.baseline``: raw asyncpg; ``bench.baseline_pg``: PostgreSQL writes
    the JSON), under the same uvicorn settings as ours."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_BASELINE_DATABASE_URL": database_url.replace(
            "postgresql+asyncpg://", "postgresql://"
        ),
        "BENCH_BASELINE_KEY_HASH_SECRET": hash_secret.decode(),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"bench.{module}:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    server = Server(module, workers, process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, "/v1/agents?limit=1", {"Authorization": f"Bearer {key}"})
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class RssSampler:
    """Samples the workers' RSS while a load runs; keeps the peak of each and the last."""

    server: Server
    interval: float = 0.25
    peak: list[int] = field(default_factory=list)
    last: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = self.server.rss_per_worker()
            if sizes:
                self.last = sizes
                if len(self.peak) != len(sizes):
                    self.peak = list(sizes)
                else:
                    self.peak = [max(a, b) for a, b in zip(self.peak, sizes, strict=True)]
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.last = self.server.rss_per_worker() or self.last
