"""Idempotency-Key on every POST: a retry replays the first outcome, never does the work twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callingbox_server.api import idempotency
from callingbox_server.core import models
from callingbox_server.domains.idempotency import repository as idempotency_repository
from tests.fixtures.factories import buy_number, create_agent, error
from tests.fixtures.tenants import Tenant

AGENT = {"name": "Front desk", "type": "inbound"}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def agent_count(tenant: Tenant) -> int:
    listed = await tenant.client.get("/v1/agents", params={"include_archived": "true"})
    return len(listed.json()["data"])


class TestIdempotencyKeyHeader:
    @pytest.mark.parametrize(
        "key",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"k" * 256, id="256-characters"),
            pytest.param("clé".encode(), id="non-ascii"),
            pytest.param(b"tab\there", id="control-character"),
            pytest.param(b"del\x7f", id="delete-character"),
        ],
    )
    async def test_malformed_key_is_rejected_and_nothing_is_created(
        self, tenant: Tenant, key: bytes
    ) -> None:
        r = await tenant.client.post("/v1/agents", json=AGENT, headers=[(b"Idempotency-Key", key)])
        assert r.status_code == 400
        message = (
            "invalid Idempotency-Key header: must be 1 to 255 printable ASCII characters, "
            "not starting or ending with a space, such as a UUID"
        )
        assert r.json() == error(r, message)
        assert await agent_count(tenant) == 0

    @pytest.mark.parametrize("key", ["k" * 255, "a", "order 42: retry #1 (~!@$%^&*)"])
    async def test_any_printable_ascii_key_of_1_to_255_characters_works(
        self, tenant: Tenant, key: str
    ) -> None:
        first = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed(key))
        again = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed(key))
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert await agent_count(tenant) == 1


class TestReplay:
    async def test_a_retry_replays_the_first_response_byte_for_byte(self, tenant: Tenant) -> None:
        first = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("create-1"))
        again = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("create-1"))
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers["etag"] == first.headers["etag"]
        assert again.headers["content-type"] == "application/json; charset=utf-8"
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await agent_count(tenant) == 1

    async def test_without_a_key_every_post_does_its_work(self, tenant: Tenant) -> None:
        await create_agent(tenant)
        await create_agent(tenant)
        assert await agent_count(tenant) == 2

    async def test_different_keys_are_different_requests(self, tenant: Tenant) -> None:
        one = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("a"))
        two = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("b"))
        assert one.json()["id"] != two.json()["id"]

    async def test_key_order_and_whitespace_of_the_body_do_not_matter(self, tenant: Tenant) -> None:
        first = await tenant.client.post(
            "/v1/agents",
            content=b'{"name": "Front desk", "type": "inbound"}',
            headers={**keyed("k"), "Content-Type": "application/json"},
        )
        again = await tenant.client.post(
            "/v1/agents",
            content=b'{"type":"inbound","name":"Front desk"}',
            headers={**keyed("k"), "Content-Type": "application/json"},
        )
        assert again.status_code == 201
        assert again.content == first.content

    async def test_keys_are_scoped_by_org(self, tenant: Tenant, other_tenant: Tenant) -> None:
        mine = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("shared"))
        theirs = await other_tenant.client.post("/v1/agents", json=AGENT, headers=keyed("shared"))
        assert mine.status_code == theirs.status_code == 201
        assert "idempotent-replayed" not in theirs.headers
        assert theirs.json()["org_id"] == str(other_tenant.org_id)
        assert await agent_count(tenant) == await agent_count(other_tenant) == 1

    async def test_purchase_is_replayed_not_bought_twice(self, tenant: Tenant) -> None:
        body = {"phone_number": tenant.phones.phone(1)}
        first = await tenant.client.post("/v1/numbers/purchase", json=body, headers=keyed("buy"))
        again = await tenant.client.post("/v1/numbers/purchase", json=body, headers=keyed("buy"))
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        listed = (await tenant.client.get("/v1/numbers")).json()["data"]
        assert [number["id"] for number in listed] == [first.json()["id"]]

    async def test_attach_is_replayed_with_its_first_outcome(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        number = await buy_number(tenant, 2)
        path = f"/v1/agents/{agent['id']}/numbers"
        body = {"number_id": number["id"]}
        first = await tenant.client.post(path, json=body, headers=keyed("attach"))
        await tenant.client.delete(f"{path}/{number['id']}")
        again = await tenant.client.post(path, json=body, headers=keyed("attach"))
        assert again.status_code == 200
        assert again.content == first.content
        # The replay did not attach the number again.
        stored = (await tenant.client.get(f"/v1/agents/{agent['id']}")).json()
        assert stored["numbers"] == []


class TestStoredErrors:
    async def test_an_error_from_the_work_is_stored_and_replayed(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        number = await buy_number(tenant, 3)
        body = {"phone_number": number["e164"]}
        refused = await other_tenant.client.post(
            "/v1/numbers/purchase", json=body, headers=keyed("buy-it")
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "number_unavailable"
        # The number becomes free again, but the key's outcome is what it was.
        await tenant.client.delete(f"/v1/numbers/{number['id']}")
        again = await other_tenant.client.post(
            "/v1/numbers/purchase", json=body, headers=keyed("buy-it")
        )
        assert again.status_code == 409
        assert again.content == refused.content  # the first request's request id included
        assert again.headers["idempotent-replayed"] == "true"
        assert (await other_tenant.client.get("/v1/numbers")).json()["data"] == []

    async def test_work_that_failed_leaves_nothing_behind(self, tenant: Tenant) -> None:
        number = await buy_number(tenant, 4)
        holder = await create_agent(tenant)
        await tenant.client.post(
            f"/v1/agents/{holder['id']}/numbers", json={"number_id": number["id"]}
        )
        body = {**AGENT, "number_ids": [number["id"]]}
        r = await tenant.client.post("/v1/agents", json=body, headers=keyed("in-use"))
        assert r.status_code == 409
        assert r.json()["code"] == "number_in_use"
        # The agent inserted before the conflict was rolled back with the work.
        assert await agent_count(tenant) == 1

    async def test_a_request_that_fails_validation_is_not_stored(self, tenant: Tenant) -> None:
        bad = await tenant.client.post(
            "/v1/agents", json={"name": "x", "type": "sideways"}, headers=keyed("fix-and-retry")
        )
        assert bad.status_code == 400
        good = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("fix-and-retry"))
        assert good.status_code == 201
        assert "idempotent-replayed" not in good.headers

    async def test_an_unauthenticated_request_is_not_stored(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/agents",
            json=AGENT,
            headers={**keyed("k"), "Authorization": "Bearer sk_live_" + "x" * 43},
        )
        assert r.status_code == 401
        good = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("k"))
        assert good.status_code == 201
        assert "idempotent-replayed" not in good.headers


class TestKeyReuse:
    async def test_same_key_with_another_body_is_422(self, tenant: Tenant) -> None:
        await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("k1"))
        r = await tenant.client.post(
            "/v1/agents", json={**AGENT, "name": "Other"}, headers=keyed("k1")
        )
        assert r.status_code == 422
        message = (
            "Idempotency-Key 'k1' was used with a different request; "
            "a retry must repeat the method, path and body"
        )
        assert r.json() == error(r, message, "idempotency_key_reused")
        assert await agent_count(tenant) == 1

    async def test_same_key_on_another_path_is_422(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        number = await buy_number(tenant, 5)
        await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("k2"))
        r = await tenant.client.post(
            f"/v1/agents/{agent['id']}/numbers",
            json={"number_id": number["id"]},
            headers=keyed("k2"),
        )
        assert r.status_code == 422
        assert r.json()["code"] == "idempotency_key_reused"
        assert (await tenant.client.get(f"/v1/agents/{agent['id']}")).json()["numbers"] == []


class TestInProgress:
    async def test_a_retry_while_the_first_request_runs_is_409(
        self, tenant: Tenant, engine: AsyncEngine
    ) -> None:
        # Another transaction holds the key's lock, exactly as a first request still running does.
        lock_id = idempotency._lock_id(tenant.org_id, "busy")
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
            r = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("busy"))
            await other.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
        assert r.status_code == 409
        message = (
            "a request with Idempotency-Key 'busy' is still being processed; "
            "retry after it completes"
        )
        assert r.json() == error(r, message, "idempotency_in_progress")
        assert await agent_count(tenant) == 0
        # Once it is free, the key is unused: the retry does the work.
        retry = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("busy"))
        assert retry.status_code == 201


class TestOtherMethods:
    async def test_the_header_is_ignored_where_requests_are_idempotent_already(
        self, tenant: Tenant
    ) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        one = await tenant.client.patch(path, json={"name": "One"}, headers=keyed("p"))
        two = await tenant.client.patch(path, json={"name": "Two"}, headers=keyed("p"))
        assert one.status_code == two.status_code == 200
        assert two.json()["name"] == "Two"


class TestRetention:
    async def _age(self, connection: AsyncConnection, tenant: Tenant, hours: float) -> None:
        K = models.IdempotencyKey
        await connection.execute(
            update(K)
            .where(K.org_id == tenant.org_id)
            .values(created_at=K.created_at - timedelta(hours=hours))
        )

    async def test_a_key_is_kept_for_24_hours(
        self, tenant: Tenant, connection: AsyncConnection
    ) -> None:
        first = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("day"))
        await self._age(connection, tenant, 23.9)
        assert await idempotency_repository.prune(connection) == 0
        again = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("day"))
        assert again.content == first.content

    async def test_an_expired_key_is_new_again_even_before_it_is_pruned(
        self, tenant: Tenant, connection: AsyncConnection
    ) -> None:
        first = await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("old"))
        await self._age(connection, tenant, 24.1)
        again = await tenant.client.post(
            "/v1/agents", json={**AGENT, "name": "New"}, headers=keyed("old")
        )
        assert again.status_code == 201
        assert again.json()["id"] != first.json()["id"]
        # ... and that new outcome is what the key replays from now on.
        replay = await tenant.client.post(
            "/v1/agents", json={**AGENT, "name": "New"}, headers=keyed("old")
        )
        assert replay.content == again.content

    async def test_prune_deletes_keys_older_than_24_hours(
        self, tenant: Tenant, connection: AsyncConnection
    ) -> None:
        await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("gone"))
        await self._age(connection, tenant, 25)
        await tenant.client.post("/v1/agents", json=AGENT, headers=keyed("kept"))
        assert await idempotency_repository.prune(connection) >= 1
        remaining = await connection.execute(
            text("SELECT key FROM idempotency_keys WHERE org_id = :org"),
            {"org": tenant.org_id},
        )
        assert [row.key for row in remaining] == ["kept"]
