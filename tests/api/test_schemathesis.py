"""Property-based tests of the whole API with Schemathesis, from the served OpenAPI document.

Every phase (examples, coverage with its negative cases, fuzzing in positive and negative mode,
stateful sequences along the links Schemathesis infers) and every check run against a real server
process, with a valid key and seed data. The run commits and buys numbers wherever the sandbox
offers them, so it gets a database of its own beside the suite's: nothing it does can reach
another test. The rules no schema can state are in schemathesis_hooks.py, beside this file.

The run is bounded by a fixed seed and a small number of examples per operation: it is
reproducible and takes seconds, as CI runs the suite twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.database import new_database
from tests.fixtures.keys import create_key_at
from tests.fixtures.numbers import area_code
from tests.fixtures.servers import running_server

SEED = 20261128
MAX_EXAMPLES = 15
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


@pytest.fixture(scope="module")
def own_database(database_url: str) -> Iterator[str]:
    """A migrated database beside the suite's, dropped afterwards."""
    with new_database(database_url, "callingbox_fuzz") as url:
        yield url


def _seed(base_url: str, key: str) -> None:
    """Objects for the links to start from: numbers of both types, and agents using them."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        numbers = []
        for params in ({"area_code": area_code()}, {"number_type": "toll_free"}):
            offer = client.get("/v1/numbers/available", params={**params, "limit": 1}).json()
            bought = client.post(
                "/v1/numbers/purchase", json={"phone_number": offer["data"][0]["phone_number"]}
            )
            assert bought.status_code == 201, bought.text
            numbers.append(bought.json()["id"])
        for kind in ("inbound", "outbound"):
            agent = client.post(
                "/v1/agents", json={"name": f"seed {kind}", "type": kind, "number_ids": numbers}
            )
            assert agent.status_code == 201, agent.text


def _cases_per_phase(events: Path) -> Counter[tuple[str, str]]:
    """Requests sent, by phase and generation mode, from the run's NDJSON event stream."""
    sent: Counter[tuple[str, str]] = Counter()
    for line in events.read_text().splitlines():
        scenario = json.loads(line).get("ScenarioFinished")
        if scenario is None:
            continue
        recorder = scenario["recorder"]
        for case_id in recorder.get("interactions") or {}:
            meta = recorder["cases"][case_id]["value"].get("meta") or {}
            sent[scenario["phase"], meta.get("generation", {}).get("mode", "")] += 1
    return sent


_VARYING = re.compile(
    r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|\+[0-9]+|tools\.[0-9]+|; \S+ appears"
)


def _dropped_by_rule(log: Path) -> Counter[str]:
    """The failures the hooks accepted as contract rules, with ids and numbers blanked."""
    if not log.exists():
        return Counter()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return Counter(
        f"{e['code']} {e['operation']}: {_VARYING.sub('…', e['error'])}" for e in entries
    )


@pytest.mark.system
def test_schemathesis_finds_nothing(own_database: str, tmp_path: Path) -> None:
    key = asyncio.run(create_key_at(own_database, org_name="schemathesis"))
    events = tmp_path / "events.ndjson"
    dropped = tmp_path / "dropped.ndjson"
    with running_server(own_database) as base_url:
        _seed(base_url, key)
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {key}",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--mode",
                "all",
                "--checks",
                "all",
                "--seed",
                str(SEED),
                "--max-examples",
                str(MAX_EXAMPLES),
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(events),
            ],
            # Its working files (reports, caches) stay out of the repository.
            cwd=tmp_path,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": str(HOOKS),
                "CALLINGBOX_SCHEMATHESIS_DROPPED": str(dropped),
            },
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    sent = _cases_per_phase(events)
    # Shown with -s (and on failure): what ran, and which contract rules the hooks accepted.
    print(f"\nSchemathesis cases sent, by phase and mode: {dict(sorted(sent.items()))}")
    print(f"total: {sum(sent.values())}")
    for rule, count in sorted(_dropped_by_rule(dropped).items()):
        print(f"accepted {count:4} x {rule}")
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        assert sent[phase, "positive"] > 0, (phase, sent)
    for phase in ("coverage", "fuzzing"):
        assert sent[phase, "negative"] > 0, (phase, sent)
    assert key not in output
