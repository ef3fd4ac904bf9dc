"""ETag on every agent and number, and If-Match on every change: no silent lost update."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx
import pytest

from tests.fixtures.factories import archive, buy_number, create_agent, error
from tests.fixtures.tenants import Tenant

STRONG_ETAG = re.compile(r'"[0-9a-f]{32}"')


def etag(response: httpx.Response) -> str:
    value = response.headers["etag"]
    assert STRONG_ETAG.fullmatch(value), value
    return value


def stale(response: httpx.Response, noun: str) -> dict[str, str]:
    message = f"{noun} has changed since it was read: If-Match does not match"
    return error(response, message, "precondition_failed")


class TestETag:
    async def test_every_single_object_response_carries_the_etag_of_its_body(
        self, tenant: Tenant
    ) -> None:
        agent = await create_agent(tenant)
        number = await buy_number(tenant, 1)
        path = f"/v1/agents/{agent['id']}"
        responses = [
            await tenant.client.post("/v1/agents", json={"name": "A", "type": "outbound"}),
            await tenant.client.get(path),
            await tenant.client.patch(path, json={"name": "B"}),
            await tenant.client.post(f"{path}/numbers", json={"number_id": number["id"]}),
            await tenant.client.put(f"{path}/primary-number", json={"number_id": number["id"]}),
            await tenant.client.delete(f"{path}/numbers/{number['id']}"),
            await tenant.client.delete(path),
            await tenant.client.get(f"/v1/numbers/{number['id']}"),
            await tenant.client.delete(f"/v1/numbers/{number['id']}"),
        ]
        for response in responses:
            assert response.status_code in (200, 201), response.text
            digest = hashlib.sha256(response.content).hexdigest()[:32]
            assert etag(response) == f'"{digest}"', response.request.url

    async def test_lists_have_no_etag(self, tenant: Tenant) -> None:
        for path in ("/v1/agents", "/v1/numbers", "/v1/numbers/available"):
            assert "etag" not in (await tenant.client.get(path)).headers

    async def test_the_etag_changes_with_the_object_and_only_then(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        first = await tenant.client.get(path)
        assert etag(await tenant.client.get(path)) == etag(first)
        assert etag(await tenant.client.patch(path, json={})) == etag(first)  # a no-op
        changed = await tenant.client.patch(path, json={"name": "Renamed"})
        assert etag(changed) != etag(first)
        assert etag(await tenant.client.get(path)) == etag(changed)

    async def test_an_agent_changes_when_another_agent_takes_its_number_as_caller_id(
        self, tenant: Tenant
    ) -> None:
        """An agent shows its numbers with their agents: that is part of its representation."""
        number = await buy_number(tenant, 2)
        first = await create_agent(tenant, type="outbound", number_ids=[number["id"]])
        before = await tenant.client.get(f"/v1/agents/{first['id']}")
        await create_agent(tenant, name="Second", type="outbound", number_ids=[number["id"]])
        after = await tenant.client.get(f"/v1/agents/{first['id']}")
        assert etag(after) != etag(before)


class TestIfMatchOnAgents:
    async def _agent_with_number(self, tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
        primary = await buy_number(tenant, 3)
        number = await buy_number(tenant, 7)
        agent = await create_agent(
            tenant, type="outbound", number_ids=[primary["id"], number["id"]]
        )
        return agent, number

    async def _changes(self, tenant: Tenant) -> list[tuple[str, str, dict[str, Any] | None]]:
        agent, number = await self._agent_with_number(tenant)
        spare = await buy_number(tenant, 4)
        path = f"/v1/agents/{agent['id']}"
        return [
            ("PATCH", path, {"name": "Renamed"}),
            ("DELETE", path, None),
            ("POST", f"{path}/numbers", {"number_id": spare["id"]}),
            ("DELETE", f"{path}/numbers/{number['id']}", None),
            ("PUT", f"{path}/primary-number", {"number_id": number["id"]}),
        ]

    @pytest.mark.parametrize(
        "which", range(5), ids=["patch", "archive", "attach", "detach", "primary"]
    )
    async def test_a_stale_if_match_is_412_and_changes_nothing(
        self, tenant: Tenant, which: int
    ) -> None:
        method, path, body = (await self._changes(tenant))[which]
        agent_path = "/".join(path.split("/")[:4])
        read = await tenant.client.get(agent_path)
        await tenant.client.patch(agent_path, json={"instructions": "someone else's edit"})
        current = await tenant.client.get(agent_path)
        r = await tenant.client.request(method, path, json=body, headers={"If-Match": etag(read)})
        assert r.status_code == 412
        assert r.json() == stale(r, f"agent {read.json()['id']}")
        assert (await tenant.client.get(agent_path)).content == current.content

    @pytest.mark.parametrize(
        "which", range(5), ids=["patch", "archive", "attach", "detach", "primary"]
    )
    async def test_the_current_etag_lets_the_change_through(
        self, tenant: Tenant, which: int
    ) -> None:
        method, path, body = (await self._changes(tenant))[which]
        agent_path = "/".join(path.split("/")[:4])
        read = await tenant.client.get(agent_path)
        r = await tenant.client.request(method, path, json=body, headers={"If-Match": etag(read)})
        assert r.status_code == 200, r.text
        assert etag(r) != etag(read)

    @pytest.mark.parametrize(
        "header",
        ['"nope", {current}', "*", '{current}, W/"weak"'],
        ids=["one-of-a-list", "star", "strong-among-weak"],
    )
    async def test_any_matching_form_is_accepted(self, tenant: Tenant, header: str) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        current = etag(await tenant.client.get(path))
        r = await tenant.client.patch(
            path, json={"name": "Ok"}, headers={"If-Match": header.format(current=current)}
        )
        assert r.status_code == 200, r.text

    async def test_a_weak_tag_never_matches(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        current = etag(await tenant.client.get(path))
        r = await tenant.client.patch(
            path, json={"name": "No"}, headers={"If-Match": f"W/{current}"}
        )
        assert r.status_code == 412

    @pytest.mark.parametrize("header", ["", "abc", '"unterminated', '"a" "b"', '"a",,', 'W/ "x"'])
    async def test_a_malformed_if_match_is_400(self, tenant: Tenant, header: str) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        r = await tenant.client.patch(path, json={"name": "No"}, headers={"If-Match": header})
        assert r.status_code == 400
        assert r.json() == error(
            r,
            "invalid If-Match header: must be * or quoted ETags separated by commas, such as "
            '"3f0a4cbe5f1d2e7a9b6c8d0e1f2a3b4c"',
        )
        assert (await tenant.client.get(path)).json()["name"] == agent["name"]

    async def test_without_if_match_nothing_changes(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        await tenant.client.patch(path, json={"name": "One"})
        assert (await tenant.client.patch(path, json={"name": "Two"})).status_code == 200

    async def test_a_missing_agent_is_404_before_412(self, tenant: Tenant) -> None:
        path = "/v1/agents/5f0c6b1e-0000-4000-8000-000000000000"
        r = await tenant.client.patch(path, json={"name": "x"}, headers={"If-Match": '"0"'})
        assert r.status_code == 404

    async def test_an_archived_agent_is_412_before_409(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        read = await tenant.client.get(path)
        archived = await tenant.client.delete(path)
        stale_attempt = await tenant.client.patch(
            path, json={"name": "x"}, headers={"If-Match": etag(read)}
        )
        assert stale_attempt.status_code == 412
        current = await tenant.client.patch(
            path, json={"name": "x"}, headers={"If-Match": etag(archived)}
        )
        assert current.status_code == 409
        assert current.json()["code"] == "agent_archived"

    async def test_archiving_again_checks_if_match_too(self, tenant: Tenant) -> None:
        agent = await create_agent(tenant)
        path = f"/v1/agents/{agent['id']}"
        read = await tenant.client.get(path)
        archived = await archive(tenant, agent["id"])
        assert (
            await tenant.client.delete(path, headers={"If-Match": etag(read)})
        ).status_code == 412
        again = await tenant.client.delete(
            path, headers={"If-Match": f'"x", {etag(await tenant.client.get(path))}'}
        )
        assert again.status_code == 200
        assert again.json() == archived


class TestIfMatchOnNumbers:
    async def test_releasing_with_a_stale_etag_is_412_and_keeps_the_number(
        self, tenant: Tenant
    ) -> None:
        number = await buy_number(tenant, 5)
        path = f"/v1/numbers/{number['id']}"
        read = await tenant.client.get(path)
        await create_agent(tenant, number_ids=[number["id"]])  # the number now has an agent
        r = await tenant.client.delete(path, headers={"If-Match": etag(read)})
        assert r.status_code == 412
        assert r.json() == stale(r, f"number {number['id']}")
        assert (await tenant.client.get(path)).json()["status"] == "active"

    async def test_releasing_with_the_current_etag_releases(self, tenant: Tenant) -> None:
        number = await buy_number(tenant, 6)
        path = f"/v1/numbers/{number['id']}"
        read = await tenant.client.get(path)
        r = await tenant.client.delete(path, headers={"If-Match": etag(read)})
        assert r.status_code == 200
        assert r.json()["status"] == "released"
        # Released already: the current ETag returns it unchanged, a stale one is 412.
        assert (await tenant.client.delete(path, headers={"If-Match": etag(r)})).status_code == 200
        assert (
            await tenant.client.delete(path, headers={"If-Match": etag(read)})
        ).status_code == 412

    async def test_a_missing_number_is_404_before_412(self, tenant: Tenant) -> None:
        r = await tenant.client.delete(
            "/v1/numbers/5f0c6b1e-0000-4000-8000-000000000000", headers={"If-Match": '"0"'}
        )
        assert r.status_code == 404
