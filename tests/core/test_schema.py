"""The binding rules hold in the database itself, whatever code writes to it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.fixtures.tenants import Tenant


async def _buy(tenant: Tenant, phone_number: str) -> str:
    response = await tenant.client.post("/v1/numbers/purchase", json={"phone_number": phone_number})
    assert response.status_code == 201
    number_id: str = response.json()["id"]
    return number_id


async def _agent(tenant: Tenant, agent_type: str) -> str:
    response = await tenant.client.post("/v1/agents", json={"name": "a", "type": agent_type})
    assert response.status_code == 201
    agent_id: str = response.json()["id"]
    return agent_id


async def _link(
    connection: AsyncConnection, tenant: Tenant, agent: str, number: str, kind: str
) -> None:
    await connection.execute(
        text(
            "INSERT INTO agent_numbers (agent_id, number_id, org_id, agent_type) "
            "VALUES (:agent, :number, :org, :kind)"
        ),
        {"agent": agent, "number": number, "org": tenant.org_id, "kind": kind},
    )


class TestSchemaConstraints:
    async def test_second_inbound_link_is_rejected(
        self, tenant: Tenant, connection: AsyncConnection
    ) -> None:
        number = await _buy(tenant, tenant.phones.phone(0))
        first, second = await _agent(tenant, "inbound"), await _agent(tenant, "inbound")
        await _link(connection, tenant, first, number, "inbound")
        with pytest.raises(IntegrityError, match="uq_agent_numbers_inbound"):
            async with connection.begin_nested():
                await _link(connection, tenant, second, number, "inbound")

    async def test_link_type_must_match_the_agent(
        self, tenant: Tenant, connection: AsyncConnection
    ) -> None:
        number = await _buy(tenant, tenant.phones.phone(0))
        outbound = await _agent(tenant, "outbound")
        with pytest.raises(IntegrityError, match="agent_type"):
            async with connection.begin_nested():
                await _link(connection, tenant, outbound, number, "inbound")

    async def test_link_across_orgs_is_rejected(
        self, tenant: Tenant, other_tenant: Tenant, connection: AsyncConnection
    ) -> None:
        number = await _buy(other_tenant, other_tenant.phones.phone(0))
        agent = await _agent(tenant, "outbound")
        with pytest.raises(IntegrityError, match="number_id_org_id"):
            async with connection.begin_nested():
                await _link(connection, tenant, agent, number, "outbound")

    async def test_second_active_owner_is_rejected(
        self, tenant: Tenant, other_tenant: Tenant, connection: AsyncConnection
    ) -> None:
        e164 = tenant.phones.phone(0)
        await _buy(tenant, e164)
        with pytest.raises(IntegrityError, match="uq_numbers_e164_active"):
            async with connection.begin_nested():
                await connection.execute(
                    text(
                        "INSERT INTO numbers (id, org_id, e164, country_code, number_type, "
                        "monthly_cost_cents) VALUES (:id, :org, :e164, 'US', 'local', 100)"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "org": other_tenant.org_id,
                        "e164": tenant.phones.phone(0),
                    },
                )

    async def test_primary_must_be_attached(
        self, tenant: Tenant, connection: AsyncConnection
    ) -> None:
        number = await _buy(tenant, tenant.phones.phone(0))
        agent = await _agent(tenant, "outbound")
        savepoint = await connection.begin_nested()
        await connection.execute(
            text("UPDATE agents SET primary_number_id = :number WHERE id = :agent"),
            {"number": number, "agent": agent},
        )
        # The foreign key is deferred: it is checked when the transaction commits.
        with pytest.raises(IntegrityError, match="fk_agents_primary_number_attached"):
            await connection.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
        await savepoint.rollback()
