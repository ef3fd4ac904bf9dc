"""GET /v1/calls, /v1/calls/{id} and /v1/calls/{id}/transcript."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domains.calls.calls import (
    STATUS_CHOICES,
    destination,
    dispatch,
    get_call,
    outbound_agent,
)
from tests.domains.calls.conftest import Runner
from tests.domains.calls.test_test_helpers import advance
from tests.fixtures.factories import buy_number, create_agent, error, random_id
from tests.fixtures.tenants import Tenant


async def page(tenant: Tenant, **params: Any) -> dict[str, Any]:
    r = await tenant.client.get("/v1/calls", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


class TestGetCall:
    async def test_etag_is_of_the_bytes(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(tenant)
        created = await tenant.client.post(
            "/v1/calls", json={"agent_id": agent["id"], "to": destination("0123")}
        )
        r = await tenant.client.get(f"/v1/calls/{created.json()['id']}")
        assert r.content == created.content
        assert r.headers["etag"] == created.headers["etag"]
        await runner.play()
        moved = await tenant.client.get(f"/v1/calls/{created.json()['id']}")
        assert moved.headers["etag"] != created.headers["etag"]

    @pytest.mark.parametrize("call_id", ["5f0c6b1e-0000-4000-8000-000000000000", "abc"])
    async def test_missing_is_404(self, tenant: Tenant, call_id: str) -> None:
        for suffix in ("", "/transcript"):
            r = await tenant.client.get(f"/v1/calls/{call_id}{suffix}")
            assert r.status_code == 404
            assert r.json() == error(r, f"call {call_id} not found", "not_found")

    async def test_transcript_is_empty_before_the_call_speaks(self, tenant: Tenant) -> None:
        agent = await outbound_agent(tenant)
        call = await dispatch(tenant, agent_id=agent["id"], to=destination("0123"))
        r = await tenant.client.get(f"/v1/calls/{call['id']}/transcript")
        assert r.status_code == 200
        assert r.json() == {"call_id": call["id"], "segments": []}


class TestListCalls:
    async def test_newest_first_in_pages(self, tenant: Tenant) -> None:
        agent = await outbound_agent(tenant)
        ids = [
            (await dispatch(tenant, agent_id=agent["id"], to=destination("0123")))["id"]
            for _ in range(5)
        ]
        newest_first = ids[::-1]
        first = await page(tenant, limit=2)
        assert [c["id"] for c in first["data"]] == newest_first[:2]
        assert first["has_more"] is True
        second = await page(tenant, limit=2, starting_after=newest_first[1])
        assert [c["id"] for c in second["data"]] == newest_first[2:4]
        last = await page(tenant, limit=2, starting_after=newest_first[3])
        assert ([c["id"] for c in last["data"]], last["has_more"]) == ([newest_first[4]], False)
        before = await page(tenant, limit=2, ending_before=newest_first[4])
        assert [c["id"] for c in before["data"]] == newest_first[2:4]
        assert first["data"][0] == await get_call(tenant, newest_first[0])

    async def test_filters(self, tenant: Tenant, runner: Runner) -> None:
        first = await outbound_agent(tenant, 0)
        second = await outbound_agent(tenant, 1)
        inbound_number = await buy_number(tenant, 2)
        await create_agent(tenant, type="inbound", number_ids=[inbound_number["id"]])
        a = await dispatch(tenant, agent_id=first["id"], to=destination("0009"))
        b = await dispatch(tenant, agent_id=second["id"], to=destination("0009"))
        r = await tenant.client.post(
            "/v1/test_helpers/inbound_calls",
            json={"to": inbound_number["e164"], "from": destination("0009", "303")},
        )
        c = r.json()
        await advance(tenant, a["id"], "initiated")

        async def ids(**params: Any) -> list[str]:
            return [call["id"] for call in (await page(tenant, **params))["data"]]

        assert await ids(agent_id=first["id"]) == [a["id"]]
        assert await ids(direction="inbound") == [c["id"]]
        assert await ids(direction="outbound") == [b["id"], a["id"]]
        assert await ids(status="initiated") == [a["id"]]
        assert await ids(status="queued", direction="outbound") == [b["id"]]
        assert await ids(agent_id=random_id()) == []

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            (
                {"status": "done"},
                f"invalid query parameter status: {STATUS_CHOICES}",
            ),
            ({"direction": "up"}, "invalid query parameter direction: must be inbound or outbound"),
            ({"agent_id": "x"}, "invalid query parameter agent_id: must be an id (a UUID)"),
            ({"limit": "0"}, "invalid query parameter limit: must be at least 1"),
            ({"sort": "asc"}, "unknown query parameter: sort"),
        ],
    )
    async def test_bad_query_is_400(
        self, tenant: Tenant, params: dict[str, str], message: str
    ) -> None:
        r = await tenant.client.get("/v1/calls", params=params)
        assert r.status_code == 400
        assert r.json() == error(r, message)

    async def test_cursor_of_another_org_is_400(self, tenant: Tenant, other_tenant: Tenant) -> None:
        agent = await outbound_agent(other_tenant)
        foreign = await dispatch(other_tenant, agent_id=agent["id"], to=destination("0123"))
        r = await tenant.client.get("/v1/calls", params={"starting_after": foreign["id"]})
        assert r.status_code == 400
        message = f"invalid query parameter starting_after: no such call {foreign['id']}"
        assert r.json() == error(r, message)
