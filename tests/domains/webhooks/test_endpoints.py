"""/v1/webhook_endpoints and /v1/webhook_deliveries over HTTP: shapes, validation, If-Match,
pagination and tenancy (in the test's rolled-back transaction)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.fixtures.factories import TIMESTAMP, error
from tests.fixtures.tenants import Tenant

HTTPS = "https://example.com/hooks/callingbox"
SECRET = re.compile(r"^whsec_[0-9a-f]{64}$")


async def create(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    r = await tenant.client.post("/v1/webhook_endpoints", json={"url": HTTPS, **fields})
    assert r.status_code == 201, r.text
    endpoint: dict[str, Any] = r.json()
    return endpoint


def without_secret(endpoint: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in endpoint.items() if k != "signing_secret"}


class TestCreateEndpoint:
    async def test_defaults_and_the_secret_shown_once(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/webhook_endpoints", json={"url": HTTPS})

        assert r.status_code == 201
        body = r.json()
        assert body == {
            "id": body["id"],
            "org_id": str(tenant.org_id),
            "url": HTTPS,
            "description": None,
            "enabled_events": ["*"],
            "status": "enabled",
            "disabled_reason": None,
            "disabled_at": None,
            "consecutive_failures": 0,
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "signing_secret": body["signing_secret"],
        }
        assert SECRET.fullmatch(body["signing_secret"])
        got = await tenant.client.get(f"/v1/webhook_endpoints/{body['id']}")
        assert got.json() == without_secret(body)
        assert got.headers["etag"] == r.headers["etag"]

    async def test_named_events_and_a_description(self, tenant: Tenant) -> None:
        events = ["call.completed", "agent.created", "number.released"]
        body = await create(tenant, enabled_events=events, description="CRM")

        assert (body["enabled_events"], body["description"]) == (events, "CRM")

    async def test_every_endpoint_has_its_own_secret(self, tenant: Tenant) -> None:
        first, second = await create(tenant), await create(tenant)

        assert first["signing_secret"] != second["signing_secret"]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({}, "missing required field: url"),
            ({"url": "ftp://example.com/x"}, "invalid field url: must be an absolute http(s) URL"),
            ({"url": HTTPS, "enabled_events": []}, "invalid field enabled_events"),
            ({"url": HTTPS, "enabled_events": ["call.started"]}, "invalid field enabled_events.0"),
            ({"url": HTTPS, "enabled_events": ["*", "*"]}, "invalid field enabled_events"),
            ({"url": HTTPS, "secret": "x"}, "unknown field: secret"),
        ],
    )
    async def test_bad_bodies_are_400(
        self, tenant: Tenant, body: dict[str, Any], message: str
    ) -> None:
        r = await tenant.client.post("/v1/webhook_endpoints", json=body)

        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_request"
        assert r.json()["error"].startswith(message)
        listed = await tenant.client.get("/v1/webhook_endpoints")
        assert listed.json() == {"data": [], "has_more": False}

    async def test_http_only_to_a_private_address(self, tenant: Tenant) -> None:
        # The test app runs on an external database: private addresses are not allowed.
        r = await tenant.client.post(
            "/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9000/hook"}
        )

        assert r.status_code == 400
        assert "must be an https URL" in r.json()["error"]
        assert "CALLINGBOX_WEBHOOK_ALLOW_PRIVATE=true" in r.json()["error"]


class TestUpdateEndpoint:
    async def test_changes_only_the_fields_sent(self, tenant: Tenant) -> None:
        before = without_secret(await create(tenant, description="old"))

        r = await tenant.client.patch(
            f"/v1/webhook_endpoints/{before['id']}",
            json={"description": None, "enabled_events": ["call.failed"]},
        )

        assert r.status_code == 200
        assert r.json() == {
            **before,
            "description": None,
            "enabled_events": ["call.failed"],
            "updated_at": TIMESTAMP,
        }
        assert r.json()["updated_at"] > before["updated_at"]

    async def test_disable_then_enable(self, tenant: Tenant) -> None:
        endpoint = await create(tenant)
        path = f"/v1/webhook_endpoints/{endpoint['id']}"

        disabled = (await tenant.client.patch(path, json={"status": "disabled"})).json()
        enabled = (await tenant.client.patch(path, json={"status": "enabled"})).json()

        assert (disabled["status"], disabled["disabled_reason"]) == ("disabled", "manual")
        assert disabled["disabled_at"] == TIMESTAMP
        assert (enabled["status"], enabled["disabled_reason"], enabled["disabled_at"]) == (
            "enabled",
            None,
            None,
        )

    @pytest.mark.parametrize("field", ["url", "enabled_events", "status"])
    async def test_null_is_refused_where_it_cannot_clear(self, tenant: Tenant, field: str) -> None:
        endpoint = await create(tenant)

        r = await tenant.client.patch(f"/v1/webhook_endpoints/{endpoint['id']}", json={field: None})

        assert r.status_code == 400
        assert r.json()["error"] == f"invalid field {field}: must not be null"

    async def test_if_match(self, tenant: Tenant) -> None:
        endpoint = await create(tenant)
        path = f"/v1/webhook_endpoints/{endpoint['id']}"
        etag = (await tenant.client.get(path)).headers["etag"]

        ok = await tenant.client.patch(path, json={"description": "a"}, headers={"If-Match": etag})
        stale = await tenant.client.patch(
            path, json={"description": "b"}, headers={"If-Match": etag}
        )

        assert ok.status_code == 200
        assert stale.status_code == 412
        assert (await tenant.client.get(path)).json()["description"] == "a"


class TestDeleteAndRotate:
    async def test_delete_answers_the_endpoint_then_it_is_gone(self, tenant: Tenant) -> None:
        endpoint = without_secret(await create(tenant))
        path = f"/v1/webhook_endpoints/{endpoint['id']}"

        r = await tenant.client.delete(path)

        assert r.status_code == 200
        assert r.json() == endpoint
        assert (await tenant.client.get(path)).status_code == 404
        assert (await tenant.client.delete(path)).status_code == 404

    async def test_rotate_gives_a_new_secret(self, tenant: Tenant) -> None:
        endpoint = await create(tenant)

        r = await tenant.client.post(f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret")

        assert r.status_code == 200
        assert SECRET.fullmatch(r.json()["signing_secret"])
        assert r.json()["signing_secret"] != endpoint["signing_secret"]
        assert without_secret(r.json()) == {**without_secret(endpoint), "updated_at": TIMESTAMP}


class TestListEndpoints:
    async def test_newest_first_with_cursors(self, tenant: Tenant) -> None:
        made = [without_secret(await create(tenant)) for _ in range(3)]

        first = (await tenant.client.get("/v1/webhook_endpoints", params={"limit": 2})).json()
        rest = await tenant.client.get(
            "/v1/webhook_endpoints", params={"limit": 2, "starting_after": first["data"][-1]["id"]}
        )

        assert first == {"data": made[::-1][:2], "has_more": True}
        assert rest.json() == {"data": made[:1], "has_more": False}


class TestDeliveriesApi:
    async def test_an_empty_list_and_filters(self, tenant: Tenant) -> None:
        for params in ({}, {"status": "pending"}, {"call_id": str(uuid.uuid4()), "limit": "200"}):
            r = await tenant.client.get("/v1/webhook_deliveries", params=params)
            assert r.json() == {"data": [], "has_more": False}

    @pytest.mark.parametrize(
        "params", [{"limit": "201"}, {"status": "failed"}, {"endpoint_id": "x"}]
    )
    async def test_bad_filters_are_400(self, tenant: Tenant, params: dict[str, str]) -> None:
        r = await tenant.client.get("/v1/webhook_deliveries", params=params)

        assert r.status_code == 400
        assert r.json()["code"] == "invalid_request"


class TestTenancy:
    async def test_another_orgs_endpoint_is_not_found_everywhere(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        theirs = await create(other_tenant)
        path = f"/v1/webhook_endpoints/{theirs['id']}"
        message = f"webhook endpoint {theirs['id']} not found"

        for r in (
            await tenant.client.get(path),
            await tenant.client.patch(path, json={"description": "x"}),
            await tenant.client.delete(path),
            await tenant.client.post(f"{path}/rotate_secret"),
        ):
            assert r.status_code == 404
            assert r.json() == error(r, message, "not_found")
        listed = await tenant.client.get("/v1/webhook_endpoints")
        assert listed.json()["data"] == []
        bad_cursor = await tenant.client.get(
            "/v1/webhook_endpoints", params={"starting_after": theirs["id"]}
        )
        assert bad_cursor.status_code == 400
        mine = await other_tenant.client.get(path)
        assert mine.json() == without_secret(theirs)

    @pytest.mark.parametrize("suffix", ["", "/redeliver", "/attempts"])
    async def test_unknown_and_malformed_delivery_ids_are_404(
        self, tenant: Tenant, suffix: str
    ) -> None:
        for delivery_id in (str(uuid.uuid4()), "nope"):
            path = f"/v1/webhook_deliveries/{delivery_id}{suffix}"
            r = await (tenant.client.post if suffix == "/redeliver" else tenant.client.get)(path)
            assert r.status_code == 404
            assert r.json() == error(r, f"webhook delivery {delivery_id} not found", "not_found")

    async def test_no_key_is_401(self, client: Any) -> None:
        for path in ("/v1/webhook_endpoints", "/v1/webhook_deliveries"):
            assert (await client.get(path)).status_code == 401
