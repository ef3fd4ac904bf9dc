"""The benchmark's data: two orgs of N agents, each agent with two numbers, loaded with COPY.

A dataset is kept between runs (seeding a million agents takes minutes) and reloaded only when
its counts do not match. API keys are new on every run and made by the server's own keys service
(``callingbox_server.domains.keys.service``), so their hashes are exactly what the server computes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pydantic_core
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from callingbox_server.domains.keys import service as keys

READ_ORGS = ("bench-a", "bench-b")
WRITE_ORG = "bench-writes"  # POST /v1/agents writes here, so the read orgs stay as seeded
SPARE_NUMBERS = 64  # unattached numbers of bench-a, one per attach/detach connection
SAMPLE = 5_000  # random agent ids per org handed to the load generator
DEEP_SAMPLE = 1_000
CHUNK = 50_000

INSTRUCTIONS = (
    "Call the customer to confirm tomorrow's appointment. Greet them by name, state the time and "
    "the address, and ask whether they can still make it. If they cannot, offer the next two free "
    "slots and note the one they pick. Keep the call under two minutes and stay polite."
)
TOOLS = [
    {
        "type": "http",
        "name": "lookup_booking",
        "description": "Find the caller's booking.",
        "policy": "read",
        "url": "https://api.example.com/bookings",
        "parameters": {
            "type": "object",
            "properties": {"phone": {"type": "string"}},
            "required": ["phone"],
        },
        "timeout_ms": 5000,
    }
]
RETURNS = {"confirmed": "boolean", "reschedule_to": "string"}

AGENT_COLUMNS = (
    "id",
    "org_id",
    "user_id",
    "name",
    "type",
    "persona",
    "instructions",
    "voice",
    "language",
    "returns",
    "tools",
    "webhook_url",
    "voicemail_action",
    "primary_number_id",
    "created_at",
    "updated_at",
)
NUMBER_COLUMNS = (
    "id",
    "org_id",
    "e164",
    "friendly_name",
    "country_code",
    "number_type",
    "status",
    "monthly_cost_cents",
    "purchased_at",
)
LINK_COLUMNS = ("agent_id", "number_id", "org_id", "agent_type", "attached_at")


@dataclass
class Org:
    name: str
    id: uuid.UUID
    key: str
    agent_ids: list[uuid.UUID] = field(default_factory=list)
    deep_ids: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Dataset:
    agents_per_org: int
    orgs: list[Org]
    writer: Org
    # (outbound agent of bench-a, spare number of bench-a): one pair per attach/detach connection
    pairs: list[tuple[uuid.UUID, uuid.UUID]]
    reused: bool


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _e164(index: int) -> str:
    return f"+1{2_000_000_000 + index}"


def _org_rows(
    org_id: uuid.UUID, user_id: str, agents: int, first_number: int, start: datetime
) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """Rows in chunks: agents, their two numbers each, and the two attachments each."""
    # Stored compact, as the server stores them (core.models.base.CompactJSON).
    returns, tools = pydantic_core.to_json(RETURNS).decode(), pydantic_core.to_json(TOOLS).decode()
    for low in range(0, agents, CHUNK):
        agent_rows: list[tuple[object, ...]] = []
        number_rows: list[tuple[object, ...]] = []
        link_rows: list[tuple[object, ...]] = []
        for i in range(low, min(low + CHUNK, agents)):
            # A millisecond apart, oldest first: keyset order is what the list pages walk.
            at = start + timedelta(milliseconds=i)
            agent_id, kind = uuid.uuid4(), "inbound" if i % 2 == 0 else "outbound"
            number_ids = (uuid.uuid4(), uuid.uuid4())
            agent_rows.append(
                (
                    agent_id,
                    org_id,
                    user_id,
                    f"Agent {i}",
                    kind,
                    None,
                    INSTRUCTIONS,
                    "alloy",
                    "en-US",
                    returns,
                    tools,
                    "https://hooks.example.com/calls",
                    "hangup",
                    number_ids[0],
                    at,
                    at,
                )
            )
            for offset, number_id in enumerate(number_ids):
                number_rows.append(
                    (
                        number_id,
                        org_id,
                        _e164(first_number + 2 * i + offset),
                        None,
                        "US",
                        "local",
                        "active",
                        100,
                        at,
                    )
                )
                link_rows.append((agent_id, number_id, org_id, kind, at))
        yield agent_rows, number_rows, link_rows


async def _load_org(
    connection: asyncpg.Connection, org: Org, key_id: uuid.UUID, agents: int, first_number: int
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with connection.transaction():
        for agent_rows, number_rows, link_rows in _org_rows(
            org.id, str(key_id), agents, first_number, start
        ):
            await connection.copy_records_to_table(
                "numbers", records=number_rows, columns=NUMBER_COLUMNS
            )
            await connection.copy_records_to_table(
                "agents", records=agent_rows, columns=AGENT_COLUMNS
            )
            await connection.copy_records_to_table(
                "agent_numbers", records=link_rows, columns=LINK_COLUMNS
            )
        # The primary-number foreign key is deferred: it is checked here, at commit.


async def _count(connection: asyncpg.Connection, sql: str, *args: object) -> int:
    value = await connection.fetchval(sql, *args)
    return int(value or 0)


async def _matches(connection: asyncpg.Connection, agents: int) -> bool:
    for name in READ_ORGS:
        org_id = await connection.fetchval("SELECT id FROM orgs WHERE name = $1", name)
        if org_id is None:
            return False
        count_agents = "SELECT count(*) FROM agents WHERE org_id = $1"
        count_numbers = "SELECT count(*) FROM numbers WHERE org_id = $1"
        if await _count(connection, count_agents, org_id) != agents:
            return False
        expected_numbers = 2 * agents + (SPARE_NUMBERS if name == READ_ORGS[0] else 0)
        if await _count(connection, count_numbers, org_id) != expected_numbers:
            return False
    return True


async def _new_keys(database_url: str, hash_secret: bytes) -> dict[str, keys.CreatedKey]:
    engine = create_async_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            return {
                name: await keys.create_key(
                    session, org_name=name, hash_secret=hash_secret, name="bench"
                )
                for name in (*READ_ORGS, WRITE_ORG)
            }
    finally:
        await engine.dispose()


async def seed(database_url: str, hash_secret: bytes, agents: int, *, log: bool = True) -> Dataset:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        reused = await _matches(connection, agents)
        if not reused:
            if log:
                print(f"bench: seeding 2 orgs x {agents:,} agents (2 numbers each) with COPY")
            await connection.execute("TRUNCATE orgs CASCADE")
        else:
            # Keys of earlier runs are useless (their secrets are gone); so are leftovers of an
            # interrupted attach/detach and the agents earlier POST runs wrote.
            await connection.execute("DELETE FROM api_keys")
            await connection.execute(
                "DELETE FROM agents WHERE org_id = (SELECT id FROM orgs WHERE name = $1)",
                WRITE_ORG,
            )
        created = await _new_keys(database_url, hash_secret)
        orgs = [Org(name, created[name].org_id, created[name].secret) for name in READ_ORGS]
        writer = Org(WRITE_ORG, created[WRITE_ORG].org_id, created[WRITE_ORG].secret)
        if not reused:
            for index, org in enumerate(orgs):
                await _load_org(connection, org, created[org.name].id, agents, index * 2 * agents)
            spares = [
                (uuid.uuid4(), orgs[0].id, _e164(4 * agents + i), None, "US", "local", "active",
                 100, datetime.now(UTC))
                for i in range(SPARE_NUMBERS)
            ]  # fmt: skip
            await connection.copy_records_to_table(
                "numbers", records=spares, columns=NUMBER_COLUMNS
            )
            await connection.execute("ANALYZE")
        for org in orgs:
            await _sample(connection, org, agents)
        return Dataset(agents, orgs, writer, await _pairs(connection, orgs[0], agents), reused)
    finally:
        await connection.close()


async def _sample(connection: asyncpg.Connection, org: Org, agents: int) -> None:
    """Random agents for GET, and cursors deep in the collection (among the oldest tenth, with
    at least a full page older than each) for starting_after."""
    org.agent_ids = [
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM agents WHERE org_id = $1 ORDER BY random() LIMIT $2", org.id, SAMPLE
        )
    ]
    org.deep_ids = [
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM (SELECT id FROM agents WHERE org_id = $1 AND archived_at IS NULL"
            " ORDER BY created_at, id OFFSET 21 LIMIT $2) oldest ORDER BY random() LIMIT $3",
            org.id,
            max(agents // 10, 10),
            DEEP_SAMPLE,
        )
    ]


async def _pairs(
    connection: asyncpg.Connection, org: Org, agents: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Outbound agents (a number may serve many) and spare numbers, paired one to one. An
    attachment left by an interrupted run is removed first (spares are never primary)."""
    spares = [
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM numbers WHERE org_id = $1 AND e164 >= $2 ORDER BY e164",
            org.id,
            _e164(4 * agents),
        )
    ]
    await connection.execute("DELETE FROM agent_numbers WHERE number_id = ANY($1)", spares)
    outbound = [
        row["id"]
        for row in await connection.fetch(
            "SELECT id FROM agents WHERE org_id = $1 AND type = 'outbound' AND archived_at IS NULL"
            " ORDER BY random() LIMIT $2",
            org.id,
            len(spares),
        )
    ]
    return list(zip(outbound, spares, strict=False))
