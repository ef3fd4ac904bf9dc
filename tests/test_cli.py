"""The callingbox-server command, run as a real process: keys, migrate, and serve.

The ``keys`` and ``migrate`` commands work on the test database (``database_url``) and are checked
against the ``live_server`` that serves it. ``serve`` on the embedded PostgreSQL gets a fresh data
directory per test, whose PostgreSQL is stopped when the test ends, whatever happened.
"""

from __future__ import annotations

import re
import shlex
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.fixtures.keys import ANY_KEY, LIVE_KEY, TEST_KEY
from tests.fixtures.servers import (
    HTTP_TIMEOUT,
    Server,
    clean_environment,
    create_key_with_cli,
    postmaster,
    run_cli,
    server_env,
    start_server,
    stop_postmaster,
    wait_postmaster_stopped,
)

ORG_ID = re.compile(r"^key [0-9a-f-]{36} for org '.*' \(([0-9a-f-]{36})\)", re.MULTILINE)

pytestmark = pytest.mark.system


def create_agent(base_url: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"name": "Front desk", "type": "inbound"}
    return httpx.post(f"{base_url}/v1/agents", headers=headers, json=body, timeout=HTTP_TIMEOUT)


def get(base_url: str, path: str, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{base_url}{path}", headers=headers, timeout=HTTP_TIMEOUT)


# The keys commands, on the test database


@pytest.fixture
def cli_env(database_url: str) -> dict[str, str]:
    return server_env(database_url)


@pytest.fixture
def org() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


class TestKeysCreate:
    def test_prints_the_key_alone_on_the_last_line(
        self, cli_env: dict[str, str], tmp_path: Path, org: str
    ) -> None:
        result = run_cli("keys", "create", "--org", org, env=cli_env, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        assert LIVE_KEY.fullmatch(result.stdout.splitlines()[-1]), result.stdout
        assert result.stdout.count("sk_live_") == 1, "the secret is printed once"

    def test_test_flag_makes_an_sk_test_key(
        self, cli_env: dict[str, str], tmp_path: Path, org: str
    ) -> None:
        created = create_key_with_cli(cli_env, tmp_path, org, "--test")

        assert TEST_KEY.fullmatch(created.secret), created.stdout

    def test_keys_work_against_the_server(
        self, cli_env: dict[str, str], tmp_path: Path, org: str, live_server: str
    ) -> None:
        live = create_key_with_cli(cli_env, tmp_path, org)
        test = create_key_with_cli(cli_env, tmp_path, org, "--test", "--name", "ci")

        for key in (live.secret, test.secret):
            response = get(live_server, "/v1/agents", key)
            assert response.status_code == 200, response.text
            assert response.json() == {"data": [], "has_more": False}

    def test_expires_in_days_sets_the_expiry(
        self, cli_env: dict[str, str], tmp_path: Path, org: str, live_server: str
    ) -> None:
        created = create_key_with_cli(cli_env, tmp_path, org, "--expires-in-days", "7")

        expiry = re.search(r"expires (\S+)", created.stdout)
        assert expiry is not None, created.stdout
        expires_at = datetime.fromisoformat(expiry[1])
        expected = datetime.now(UTC) + timedelta(days=7)
        assert abs(expires_at - expected) < timedelta(minutes=5)
        assert get(live_server, "/v1/agents", created.secret).status_code == 200
        listing = run_cli("keys", "list", "--org", org, env=cli_env, cwd=tmp_path)
        assert f"expires {expires_at:%Y-%m-%d}" in listing.stdout, listing.stdout

    @pytest.mark.parametrize("days", ["0", "-1", "soon"])
    def test_expires_in_days_must_be_a_positive_number(
        self, cli_env: dict[str, str], tmp_path: Path, org: str, days: str
    ) -> None:
        result = run_cli(
            "keys", "create", "--org", org, "--expires-in-days", days, env=cli_env, cwd=tmp_path
        )

        assert result.returncode == 2
        assert "--expires-in-days" in result.stderr
        assert ANY_KEY.search(result.stdout) is None

    def test_org_names_are_trimmed_and_found_whatever_their_case(
        self, cli_env: dict[str, str], tmp_path: Path, org: str, live_server: str
    ) -> None:
        typed = f"  {org.upper()} "

        first = create_key_with_cli(cli_env, tmp_path, typed)
        again = create_key_with_cli(cli_env, tmp_path, org)

        assert first.stdout.splitlines()[0] == f"created org '{org.upper()}'"
        assert again.stdout.splitlines()[0] == f"using org '{org.upper()}'"
        assert ORG_ID.search(first.stdout)[1] == ORG_ID.search(again.stdout)[1]  # type: ignore[index]
        listing = run_cli("keys", "list", "--org", org.lower(), env=cli_env, cwd=tmp_path)
        assert first.id in listing.stdout
        assert again.id in listing.stdout
        created = create_agent(live_server, first.secret)
        assert created.status_code == 201, created.text
        seen = get(live_server, f"/v1/agents/{created.json()['id']}", again.secret)
        assert seen.status_code == 200, "both keys are of one org"

    @pytest.mark.parametrize(
        ("name", "problem"),
        [
            ("", "must not be blank"),
            ("   ", "must not be blank"),
            ("\t", "must not be blank"),
            ("a\x01b", "must not contain control characters"),
            ("x" * 201, "must be at most 200 characters"),
        ],
        ids=["empty", "spaces", "tab", "control", "too-long"],
    )
    def test_an_org_name_must_be_one_line_of_text(
        self, cli_env: dict[str, str], tmp_path: Path, name: str, problem: str
    ) -> None:
        result = run_cli("keys", "create", "--org", name, env=cli_env, cwd=tmp_path)

        assert result.returncode == 2
        assert f"argument --org: an org name {problem}" in result.stderr
        assert result.stdout == ""


class TestKeysList:
    def test_shows_key_ids_and_never_the_secrets(
        self, cli_env: dict[str, str], tmp_path: Path, org: str
    ) -> None:
        first = create_key_with_cli(cli_env, tmp_path, org, "--name", "first")
        second = create_key_with_cli(cli_env, tmp_path, org, "--test")

        for args in (("keys", "list", "--org", org), ("keys", "list")):
            result = run_cli(*args, env=cli_env, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            assert first.id in result.stdout
            assert second.id in result.stdout
            assert f"sk_live_...{first.secret[-4:]}" in result.stdout
            assert f"sk_test_...{second.secret[-4:]}" in result.stdout
            assert ANY_KEY.search(result.stdout) is None, "a secret was listed"
            assert first.secret[8:20] not in result.stdout

    def test_only_the_given_org(self, cli_env: dict[str, str], tmp_path: Path, org: str) -> None:
        mine = create_key_with_cli(cli_env, tmp_path, org)
        other = create_key_with_cli(cli_env, tmp_path, f"{org}-other")

        result = run_cli("keys", "list", "--org", org, env=cli_env, cwd=tmp_path)

        assert mine.id in result.stdout
        assert other.id not in result.stdout

    def test_an_unknown_org_fails(self, cli_env: dict[str, str], tmp_path: Path, org: str) -> None:
        result = run_cli("keys", "list", "--org", org, env=cli_env, cwd=tmp_path)

        assert result.returncode == 1
        assert result.stdout == ""
        assert f"error: no org '{org}' (see 'keys list' for every org)" in result.stderr

    def test_columns_line_up(self, cli_env: dict[str, str], tmp_path: Path, org: str) -> None:
        long_org = f"{org}-whose-name-is-longer-than-twenty-characters"
        create_key_with_cli(cli_env, tmp_path, long_org, "--expires-in-days", "30", "--name", "ci")
        create_key_with_cli(cli_env, tmp_path, long_org)
        revoked = create_key_with_cli(cli_env, tmp_path, long_org, "--test")
        run_cli("keys", "revoke", revoked.id, env=cli_env, cwd=tmp_path)

        result = run_cli("keys", "list", "--org", long_org, env=cli_env, cwd=tmp_path)

        header, *rows = result.stdout.splitlines()
        assert len(rows) == 3
        columns = ["KEY ID", "ORG", "KEY", "STATE", "CREATED", "NAME"]
        starts = [header.index(f"{name}  " if name != "NAME" else name) for name in columns]
        assert starts == sorted(starts)
        for row in rows:
            ends = [*starts[1:], len(row)]
            cells = [row[start:end].strip() for start, end in zip(starts, ends, strict=True)]
            for cell, start in zip(cells[1:], starts[1:], strict=True):
                if cell:  # each cell starts where its header does (an empty NAME has none)
                    assert row[start - 2 : start] == "  ", (row, start)
                    assert row[start] != " ", (row, start)
            assert cells[1] == long_org
        states = sorted(row[starts[3] : starts[4]].strip() for row in rows)
        assert states[0] == "active"
        assert re.fullmatch(r"expires \d{4}-\d\d-\d\d", states[1]), states
        assert states[2] == "revoked"


class TestKeysRevoke:
    def test_revoked_key_is_refused_from_the_next_request(
        self, cli_env: dict[str, str], tmp_path: Path, org: str, live_server: str
    ) -> None:
        created = create_key_with_cli(cli_env, tmp_path, org)
        assert get(live_server, "/v1/agents", created.secret).status_code == 200

        result = run_cli("keys", "revoke", created.id, env=cli_env, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        assert created.id in result.stdout
        response = get(live_server, "/v1/agents", created.secret)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        listing = run_cli("keys", "list", "--org", org, env=cli_env, cwd=tmp_path)
        assert "revoked" in listing.stdout

    def test_revoking_twice_says_it_was_revoked_already(
        self, cli_env: dict[str, str], tmp_path: Path, org: str
    ) -> None:
        created = create_key_with_cli(cli_env, tmp_path, org)
        first = run_cli("keys", "revoke", created.id, env=cli_env, cwd=tmp_path)
        assert first.returncode == 0, first.stderr

        again = run_cli("keys", "revoke", created.id, env=cli_env, cwd=tmp_path)

        assert again.returncode == 1
        assert again.stdout == ""
        assert re.search(
            rf"^error: key {created.id} was revoked already, at "
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; nothing changed$",
            again.stderr,
            re.MULTILINE,
        ), again.stderr

    def test_the_key_itself_can_be_given(
        self, cli_env: dict[str, str], tmp_path: Path, org: str, live_server: str
    ) -> None:
        created = create_key_with_cli(cli_env, tmp_path, org)

        result = run_cli("keys", "revoke", created.secret, env=cli_env, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        assert result.stdout == f"revoked key {created.id}\n"
        assert created.secret not in result.stderr
        assert get(live_server, "/v1/agents", created.secret).status_code == 401

    def test_an_unknown_key_fails_without_echoing_it(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        secret = "sk_live_" + "Q" * 43

        result = run_cli("keys", "revoke", secret, env=cli_env, cwd=tmp_path)

        assert result.returncode == 1
        assert "error: no key sk_live_...QQQQ in this database" in result.stderr
        assert secret not in result.stderr + result.stdout

    def test_unknown_key_id_fails(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        key_id = str(uuid.uuid4())

        result = run_cli("keys", "revoke", key_id, env=cli_env, cwd=tmp_path)

        assert result.returncode == 1
        assert f"no key {key_id}" in result.stderr
        assert "Traceback" not in result.stderr

    def test_malformed_key_id_fails(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        result = run_cli("keys", "revoke", "sk_live_oops", env=cli_env, cwd=tmp_path)

        assert result.returncode == 2
        assert (
            "argument KEY: is not a key id (a UUID, see 'keys list') or a key "
            "(sk_live_... or sk_test_...)"
        ) in result.stderr
        assert "oops" not in result.stderr, "what may be a mistyped secret is not echoed"
        assert "Traceback" not in result.stderr


class TestMigrate:
    def test_migrate_is_idempotent(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        for _ in range(2):
            result = run_cli("migrate", env=cli_env, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            assert "latest migration" in result.stdout


class TestServeHelp:
    def test_says_what_each_option_does_and_its_default(self, tmp_path: Path) -> None:
        env = clean_environment(CALLINGBOX_PORT="9123", CALLINGBOX_WORKERS="3")

        result = run_cli("serve", "--help", env=env, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        text = " ".join(result.stdout.split())
        assert "address to listen on (default: 127.0.0.1; CALLINGBOX_HOST sets the default)" in text
        assert "port to listen on (default: 9123; CALLINGBOX_PORT sets the default)" in text
        assert "server processes, 1 to 64 (default: 3; CALLINGBOX_WORKERS sets the default)" in text
        # argparse wraps a long path at its hyphens: compare without the whitespace.
        here = f"CALLINGBOX_DATA_DIR(here:{tmp_path.resolve() / '.callingbox'})"
        assert here in "".join(result.stdout.split())
        assert not (tmp_path / ".callingbox").exists()

    @pytest.mark.parametrize("port", ["0", "65536", "http"])
    def test_a_bad_port_is_refused(self, tmp_path: Path, port: str) -> None:
        result = run_cli("serve", "--port", port, env=clean_environment(), cwd=tmp_path)

        assert result.returncode == 2
        assert "argument --port: must be a whole number from 1 to 65535" in result.stderr
        assert not (tmp_path / ".callingbox").exists()


# serve on the embedded PostgreSQL


@pytest.fixture
def data_dir(tmp_path: Path, servers: list[Server]) -> Iterator[Path]:
    """An empty data directory; its PostgreSQL is stopped after the test (and its servers)."""
    path = tmp_path / "data"
    yield path
    for server in servers:  # the servers first, or one would keep the postmaster busy
        server.close()
    stop_postmaster(path)


@pytest.fixture
def embedded_env(data_dir: Path) -> dict[str, str]:
    return clean_environment(CALLINGBOX_DATA_DIR=str(data_dir), CALLINGBOX_LOG_LEVEL="warning")


class TestServeEmbedded:
    def test_first_start_prints_a_working_key_and_a_restart_keeps_the_data(
        self,
        embedded_env: dict[str, str],
        data_dir: Path,
        tmp_path: Path,
        servers: list[Server],
    ) -> None:
        first = start_server(embedded_env, tmp_path, "first")
        servers.append(first)
        first.wait_ready()

        # Exactly one development key, on a line of its own and in a curl line that works.
        lines = first.stdout().splitlines()
        keys = {key for line in lines for key in ANY_KEY.findall(line)}
        assert len(keys) == 1, first.output()
        key = keys.pop()
        assert LIVE_KEY.fullmatch(key)
        assert [line.strip() for line in lines].count(key) == 1, first.output()
        curl = [line.strip() for line in lines if line.strip().startswith("curl ")]
        assert curl == [f"curl -H 'Authorization: Bearer {key}' {first.base_url}/v1/agents"]
        _, _, header, url = shlex.split(curl[0])
        name, _, value = header.partition(": ")
        response = httpx.get(url, headers={name: value}, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        assert response.json() == {"data": [], "has_more": False}
        secret_file = data_dir / "key_hash_secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600

        created = create_agent(first.base_url, key)
        assert created.status_code == 201, created.text
        agent_id = created.json()["id"]

        # The org's default webhook signing secret is printed beside the key, once.
        secret = run_cli("webhooks", "secret", "--org", "default", env=embedded_env, cwd=tmp_path)
        assert secret.returncode == 0, secret.stderr
        assert [line.strip() for line in lines].count(secret.stdout.splitlines()[-1]) == 1

        # keys create shares the running server's PostgreSQL, and leaves it running on exit.
        extra = create_key_with_cli(embedded_env, tmp_path, "acme")
        assert get(first.base_url, "/v1/agents", extra.secret).status_code == 200
        assert get(first.base_url, "/v1/agents", key).status_code == 200

        first.stop(signal.SIGTERM)
        stop_postmaster(data_dir)  # a restart from disk, whatever the first stop left behind

        second = start_server(embedded_env, tmp_path, "second")
        servers.append(second)
        second.wait_ready()

        assert ANY_KEY.search(second.stdout()) is None, second.output()
        assert "development API key" not in second.stdout()
        assert "whsec_" not in second.stdout()
        response = get(second.base_url, "/v1/agents", key)
        assert response.status_code == 200, response.text
        assert [agent["id"] for agent in response.json()["data"]] == [agent_id]
        assert get(second.base_url, f"/v1/agents/{agent_id}", key).json()["name"] == "Front desk"
        second.stop(signal.SIGTERM)

    @pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
    def test_stopping_the_server_stops_its_postgres(
        self,
        embedded_env: dict[str, str],
        data_dir: Path,
        tmp_path: Path,
        servers: list[Server],
        sig: signal.Signals,
    ) -> None:
        server = start_server(embedded_env, tmp_path)
        servers.append(server)
        server.wait_ready()
        assert postmaster(data_dir) is not None

        returncode = server.stop(sig)

        assert wait_postmaster_stopped(data_dir, timeout=10), (
            f"the embedded PostgreSQL outlived serve ({sig.name}, exit status {returncode})\n"
            f"{server.output()}"
        )
