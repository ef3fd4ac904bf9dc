"""The ``callingbox-server`` command: serve, migrate, and manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from callingbox_server.core import migrate
from callingbox_server.core.config import Settings, describe_settings_error, get_settings
from callingbox_server.core.runtime import ConfigError, Runtime, resolve_runtime
from callingbox_server.domains.keys import repository as keys_repository
from callingbox_server.domains.keys import service as keys
from callingbox_server.domains.webhooks import repository as webhooks_repository

T = TypeVar("T")
DEFAULT_ORG = "default"
MAX_WORKERS = 64  # as CALLINGBOX_WORKERS allows
# What `keys revoke` takes besides a key id: a whole key, as `keys create` printed it.
_KEY_SHAPE = re.compile(r"sk_(?:live|test)_[A-Za-z0-9_-]{20,}")
logger = logging.getLogger("callingbox_server")


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


def _say_database(runtime: Runtime) -> None:
    """Every command names its database on stderr: one found in the wrong directory, or another
    server than meant, shows at once instead of as an empty list or a 401 later."""
    print(f"database: {runtime.describe()}", file=sys.stderr, flush=True)


def _runtime(settings: Settings) -> Runtime:
    runtime = resolve_runtime(settings)
    _say_database(runtime)
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
    runtime = resolve_runtime(settings, create=True)
    # Logged, not printed: with CALLINGBOX_LOG_FORMAT=json every line on stderr is JSON.
    logger.info("database: %s", runtime.describe())
    if not args.no_migrate:
        migrate.upgrade(runtime.database_url)
    if runtime.embedded:
        _bootstrap_development_key(runtime, args.host, args.port)
        # Workers are separate processes: hand them the server we started and its secret.
        os.environ["CALLINGBOX_DATABASE_URL"] = runtime.database_url
        os.environ["CALLINGBOX_KEY_HASH_SECRET"] = runtime.key_hash_secret.decode()
        # ... and keep the embedded database's default: webhooks may go to localhost receivers.
        if settings.webhook_allow_private is None:
            os.environ["CALLINGBOX_WEBHOOK_ALLOW_PRIVATE"] = "true"
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
        # httptools, with bounds on the request head and its errors as JSON (api.http_protocol).
        http="callingbox_server.api.http_protocol:BoundedHttpToolsProtocol",
        log_level=settings.log_level,
        # Logging is ours (callingbox_server.core.logs): one line per request, in the chosen format.
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        timeout_keep_alive=settings.keep_alive_timeout,
    )
    return 0


def _bootstrap_development_key(runtime: Runtime, host: str, port: int) -> None:
    async def create_if_empty(session: AsyncSession) -> tuple[keys.CreatedKey, str] | None:
        if await keys_repository.count_orgs(session) > 0:
            return None
        created = await keys.create_key(
            session, org_name=DEFAULT_ORG, hash_secret=runtime.key_hash_secret, name="development"
        )
        return created, await webhooks_repository.org_secret(session, created.org_id)

    bootstrapped = _run_in_session(runtime, create_if_empty)
    if bootstrapped is not None:
        created, webhook_secret = bootstrapped
        print(f"Created org '{DEFAULT_ORG}' and a development API key (shown once):")
        print(f"  {created.secret}")
        print(f"  curl -H 'Authorization: Bearer {created.secret}' http://{host}:{port}/v1/agents")
        print("Webhooks to a call's webhook_url are signed with the org's default secret")
        print(f"(again: callingbox-server webhooks secret --org {DEFAULT_ORG}):")
        print(f"  {webhook_secret}")
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
    _say_database(runtime)
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
    print(f"{'created' if created.org_created else 'using'} org '{created.org_name}'")
    print(f"key {created.id} for org '{created.org_name}' ({created.org_id}){expiry}")
    print("store it now: the secret is not kept and cannot be shown again")
    print(created.secret)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _runtime(settings)

    async def listing(session: AsyncSession) -> list[keys_repository.ListedKey] | None:
        if args.org is None:
            return await keys_repository.list_keys(session)
        org = await keys_repository.find_org(session, args.org)
        return None if org is None else await keys_repository.list_keys(session, org[0])

    rows = _run_in_session(runtime, listing)
    if rows is None:
        print(f"error: no org '{args.org}' (see 'keys list' for every org)", file=sys.stderr)
        return 1
    if not rows:
        print("no keys yet: create one with 'keys create --org NAME'", file=sys.stderr)
        return 0
    now = datetime.now(UTC)
    table = [("KEY ID", "ORG", "KEY", "STATE", "CREATED", "NAME")]
    table += [
        (
            str(key.id),
            org,
            f"sk_{key.mode}_...{key.last4}",
            _key_state(key.revoked_at, key.expires_at, now),
            f"{key.created_at:%Y-%m-%d %H:%M:%S}",
            key.name or "",
        )
        for key, org in rows
    ]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def _key_state(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is None:
        return "active"
    return f"{'expires' if expires_at > now else 'expired'} {expires_at:%Y-%m-%d}"


def _key_reference(value: str) -> uuid.UUID | str:
    """A key id, or a whole key; the value is never echoed, in case it is a mistyped secret."""
    try:
        return uuid.UUID(value)
    except ValueError:
        if _KEY_SHAPE.fullmatch(value):
            return value
    raise argparse.ArgumentTypeError(
        "is not a key id (a UUID, see 'keys list') or a key (sk_live_... or sk_test_...)"
    )


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _runtime(settings)
    reference: uuid.UUID | str = args.key
    if isinstance(reference, uuid.UUID):
        named, key_id = f"key {reference}", reference
    else:
        named = f"key {reference[: len('sk_live_')]}...{reference[-4:]}"
        key_hash = keys.hash_key(runtime.key_hash_secret, reference)
        found = _run_in_session(
            runtime, lambda session: keys_repository.find_key_id(session, key_hash)
        )
        if found is None:
            print(f"error: no {named} in this database", file=sys.stderr)
            return 1
        key_id = found
    revoked = _run_in_session(runtime, lambda session: keys_repository.revoke_key(session, key_id))
    if revoked is None:
        print(f"error: no {named}", file=sys.stderr)
        return 1
    if revoked.already:
        when = f"{revoked.revoked_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        print(
            f"error: key {key_id} was revoked already, at {when}; nothing changed", file=sys.stderr
        )
        return 1
    print(f"revoked key {key_id}")
    return 0


def cmd_webhooks_secret(args: argparse.Namespace, settings: Settings) -> int:
    runtime = _runtime(settings)

    async def secret(session: AsyncSession) -> str | None:
        org = await keys_repository.find_org(session, args.org)
        if org is None:
            return None
        return await webhooks_repository.org_secret(session, org[0], rotate=args.rotate)

    shown = _run_in_session(runtime, secret)
    if shown is None:
        print(f"error: no org '{args.org}' (see 'keys list' for every org)", file=sys.stderr)
        return 1
    if args.rotate:
        print("rotated: deliveries from now on are signed with this secret only")
    print(f"default webhook signing secret of org '{args.org}' (for calls' webhook_url):")
    print(shown)
    return 0


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not value.strip().isdigit() or not low <= int(value) <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}")
        return int(value)

    return parse


def _org_name(value: str) -> str:
    try:
        return keys.clean_org_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callingbox-server", description="Serve the CallingBox v1 API and manage its keys."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="apply migrations, then serve the API",
        description="Apply migrations, then serve the API. Without CALLINGBOX_DATABASE_URL it "
        "uses the embedded PostgreSQL in CALLINGBOX_DATA_DIR "
        f"(here: {settings.data_dir.resolve()}), and creates it on the first start.",
    )
    serve.add_argument(
        "--host",
        default=settings.host,
        help="address to listen on (default: %(default)s; CALLINGBOX_HOST sets the default)",
    )
    serve.add_argument(
        "--port",
        type=_whole_number(1, 65535),
        default=settings.port,
        help="port to listen on (default: %(default)s; CALLINGBOX_PORT sets the default)",
    )
    serve.add_argument(
        "--workers",
        type=_whole_number(1, MAX_WORKERS),
        default=settings.workers,
        help=f"server processes, 1 to {MAX_WORKERS} "
        "(default: %(default)s; CALLINGBOX_WORKERS sets the default)",
    )
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
    create.add_argument(
        "--org",
        required=True,
        type=_org_name,
        help="organization name; an existing org is found whatever the case (Acme is acme)",
    )
    create.add_argument("--test", action="store_true", help="an sk_test_ key instead of sk_live_")
    create.add_argument("--name", help="a label for the key")
    create.add_argument(
        "--expires-in-days", type=_whole_number(1, 36500), help="expire the key after N days"
    )
    create.set_defaults(handler=cmd_keys_create)
    listing = keys_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--org", type=_org_name, help="only this organization's keys")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = keys_commands.add_parser("revoke", help="revoke a key, from the next request on")
    revoke.add_argument(
        "key",
        metavar="KEY",
        type=_key_reference,
        help="the key's id (from 'keys list'), or the key itself",
    )
    revoke.set_defaults(handler=cmd_keys_revoke)

    webhooks_cmd = commands.add_parser("webhooks", help="webhook settings of an organization")
    webhooks_commands = webhooks_cmd.add_subparsers(dest="webhooks_command", required=True)
    secret = webhooks_commands.add_parser(
        "secret",
        help="show (or --rotate) the org's default signing secret, which signs deliveries to "
        "a call's webhook_url",
    )
    secret.add_argument("--org", required=True, type=_org_name, help="organization name")
    secret.add_argument(
        "--rotate", action="store_true", help="replace it; the old one stops verifying at once"
    )
    secret.set_defaults(handler=cmd_webhooks_secret)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        for line in describe_settings_error(exc):
            print(f"error: {line}", file=sys.stderr)
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
