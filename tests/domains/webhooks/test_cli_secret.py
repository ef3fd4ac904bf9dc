"""``callingbox-server webhooks secret --org NAME [--rotate]``: the org's default signing secret."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.fixtures.servers import create_key_with_cli, run_cli, server_env

pytestmark = pytest.mark.system
SECRET = re.compile(r"^whsec_[0-9a-f]{64}$")


def test_shows_the_same_secret_until_rotated(database_url: str, tmp_path: Path) -> None:
    env = server_env(database_url)
    org = f"hooks-{uuid.uuid4().hex[:8]}"
    create_key_with_cli(env, tmp_path, org)

    first = run_cli("webhooks", "secret", "--org", org.upper(), env=env, cwd=tmp_path)
    again = run_cli("webhooks", "secret", "--org", org, env=env, cwd=tmp_path)
    rotated = run_cli("webhooks", "secret", "--org", org, "--rotate", env=env, cwd=tmp_path)
    after = run_cli("webhooks", "secret", "--org", org, env=env, cwd=tmp_path)

    for result in (first, again, rotated, after):
        assert result.returncode == 0, result.stderr
        assert SECRET.fullmatch(result.stdout.splitlines()[-1]), result.stdout
    secret = first.stdout.splitlines()[-1]
    assert again.stdout.splitlines()[-1] == secret
    assert rotated.stdout.splitlines()[-1] != secret
    assert rotated.stdout.startswith("rotated:")
    assert after.stdout.splitlines()[-1] == rotated.stdout.splitlines()[-1]


def test_an_unknown_org_is_an_error(database_url: str, tmp_path: Path) -> None:
    result = run_cli(
        "webhooks", "secret", "--org", "no-such-org", env=server_env(database_url), cwd=tmp_path
    )

    assert result.returncode == 1
    assert "no org 'no-such-org'" in result.stderr
    assert result.stdout == ""
