"""The ``callingbox-server`` command: serve, migrate, and manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from callingbox_server.core import migrate
from callingbox_server.core.config import Settings, get_settings
from callingbox_server.core.runtime import ConfigError, Runtime, resolve_runtime
from callingbox_server.domains.keys import repository as keys_repository
from callingbox_server.domains.keys import service as keys

T = TypeVar("T")
DEFAULT_ORG = "default"
MAX_WORKERS = 64  # as CALLINGBOX_WORKERS allows


def _run_in_session(runtime: Runtime, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on a throwaway engine."""

    async def go() -> T:
        engine = create_async_engine(runtime.database_url, poolclass=pool.NullPool)
        try:
            maker = async_sessionmaker(engine, expire_on_commit=False)
            async with maker() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _runtime(settings: Settings) -> Runtime:
    runtime = resolve_runtime(settings)
    if runtime.embedded:
        # The embedded database is ours to keep current; an external one is migrated on purpose.
        migrate.upgrade(runtime.database_url)
    return runtime


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from callingbox_server.core.logs import configure_logging
    from callingbox_server.core.metrics import prepare_multiprocess_dir

    if args.no_migrate and settings.embedded:
        raise ConfigError(
            "--no-migrate is for an external database (CALLINGBOX_DATABASE_URL); "
            "serve keeps the embedded one migrated itself"
        )
    configure_logging(settings.log_level, settings.log_format)
    runtime = resolve_runtime(settings)
    if not args.no_migrate:
        migrate.upgrade(runtime.database_url)
    if runtime.embedded:
        _bootstrap_development_key(runtime, args.host, args.port)
        # Workers are separate processes: hand them the server we started and its secret.
        os.environ["CALLINGBOX_DATABASE_URL"] = runtime.database_url
        os.environ["CALLINGBOX_KEY_HASH_SECRET"] = runtime.key_hash_secret.decode()
    # On SIGTERM uvicorn stops accepting, lets requests in progress finish (at most
    # shutdown_timeout), runs the lifespan shutdown, restores this handler and re-raises the
    # signal: exit through Python then, so that atexit stops the embedded PostgreSQL instead of
    # the signal killing us outright. With --workers the supervisor forwards SIGTERM to each
    # worker, waits for them, and returns normally.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    prepare_multiprocess_dir(args.workers)
    uvicorn.run(
        "callingbox_server.api.app:serve_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_level=settings.log_level,
        # Logging is ours (callingbox_server.core.logs): one line per request, in the chosen format.
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
    return 0


def _bootstrap_development_key(runtime: Runtime, host: str, port: int) -> None:
    async def create_if_empty(session: AsyncSession) -> keys.CreatedKey | None:
        if await keys_repository.count_orgs(session) > 0:
            return None
        return await keys.create_key(
            session, org_name=DEFAULT_ORG, hash_secret=runtime.key_hash_secret, name="development"
        )

    created = _run_in_session(runtime, create_if_empty)
    if created is not None:
        print(f"Created org '{DEFAULT_ORG}' and a development API key (shown once):")
        print(f"  {created.secret}")
        print(f"  curl -H 'Authorization: Bearer {created.secret}' http://{host}:{port}/v1/agents")
        sys.stdout.flush()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from callingbox_server.core.logs import configure_logging
    from callingbox_server.worker.runner import run_alone

    configure_logging(settings.log_level, settings.log_format)
    runtime = _runtime(settings)
    asyncio.run(run_alone(runtime.database_url, settings))
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    runtime = resolve_runtime(settings)
    migrate.upgrade(runtime.database_url)
    print("database is at the latest migration")
    return 0


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from callingbox_server.api.app import openapi_document

    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _runtime(settings)

    async def create(session: AsyncSession) -> keys.CreatedKey:
        return await keys.create_key(
            session,
            org_name=args.org,
            hash_secret=runtime.key_hash_secret,
            mode="test" if args.test else "live",
            name=args.name,
            expires_in_days=args.expires_in_days,
        )

    created = _run_in_session(runtime, create)
    expiry = f", expires {created.expires_at.isoformat()}" if created.expires_at else ""
    print(f"key {created.id} for org '{created.org_name}' ({created.org_id}){expiry}")
    print("store it now: the secret is not kept and cannot be shown again")
    print(created.secret)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _runtime(settings)
    rows = _run_in_session(runtime, lambda session: keys_repository.list_keys(session, args.org))
    print(f"{'KEY ID':36}  {'ORG':20}  {'KEY':18}  {'STATE':8}  {'CREATED':20}  NAME")
    for key, org in rows:
        state = "revoked" if key.revoked_at else "active"
        if state == "active" and key.expires_at is not None:
            state = f"exp {key.expires_at:%Y-%m-%d}"
        shown = f"sk_{key.mode}_...{key.last4}"
        created = f"{key.created_at:%Y-%m-%d %H:%M:%S}"
        print(
            f"{key.id!s:36}  {org[:20]:20}  {shown:18}  {state:8}  {created:20}  {key.name or ''}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    try:
        key_id = uuid.UUID(args.key_id)
    except ValueError:
        print(f"error: {args.key_id} is not a key id (a UUID, see 'keys list')", file=sys.stderr)
        return 2
    runtime = _runtime(settings)
    if not _run_in_session(runtime, lambda session: keys_repository.revoke_key(session, key_id)):
        print(f"error: no key {key_id}", file=sys.stderr)
        return 1
    print(f"revoked key {key_id}")
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_WORKERS}")
    return number


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callingbox-server", description="Serve the CallingBox v1 API and manage its keys."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="apply migrations, then serve the API")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--workers", type=_workers, default=settings.workers)
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not upgrade the database first (for deployments that run `migrate` on their own)",
    )
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser(
        "worker",
        help="run the background jobs alone, for API processes started with "
        "CALLINGBOX_SERVE_RUNS_WORKER=false (any number may run at once)",
    )
    worker.set_defaults(handler=cmd_worker)

    migrate_cmd = commands.add_parser(
        "migrate",
        help="upgrade the database to the latest schema (safe to run from several places at once)",
    )
    migrate_cmd.set_defaults(handler=cmd_migrate)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document (no database needed)")
    openapi.add_argument("--output", default="-", help="write it to this file instead of stdout")
    openapi.set_defaults(handler=cmd_openapi)

    keys_cmd = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys_cmd.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key (and its org if needed)")
    create.add_argument("--org", required=True, help="organization name")
    create.add_argument("--test", action="store_true", help="an sk_test_ key instead of sk_live_")
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--expires-in-days", type=_positive, help="expire the key after N days")
    create.set_defaults(handler=cmd_keys_create)
    listing = keys_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--org", help="only this organization's keys")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = keys_commands.add_parser("revoke", help="revoke a key, from the next request on")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=cmd_keys_revoke)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    try:
        code: int = args.handler(args, settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
