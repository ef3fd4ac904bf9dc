"""POST /v1/calls/{id}/cancel: only before the call is answered."""

from __future__ import annotations

import pytest

from tests.domains.calls.calls import destination, dispatch, get_call, outbound_agent
from tests.domains.calls.conftest import Runner
from tests.domains.calls.test_test_helpers import PATHS, advance, manual_call
from tests.fixtures.factories import TIMESTAMP, error, random_id
from tests.fixtures.tenants import Tenant

BEFORE_ANSWER = ["queued", "initiated", "ringing"]
EVENTS_BEFORE = {
    "queued": ["call.queued"],
    "initiated": ["call.queued"],
    "ringing": ["call.queued", "call.ringing"],
}


class TestCancelCall:
    @pytest.mark.parametrize("status", BEFORE_ANSWER)
    async def test_before_answer(self, tenant: Tenant, runner: Runner, status: str) -> None:
        call = await manual_call(tenant)
        for step in PATHS[status]:
            await advance(tenant, call["id"], step)
        before = await get_call(tenant, call["id"])
        r = await tenant.client.post(f"/v1/calls/{call['id']}/cancel")
        assert r.status_code == 200, r.text
        canceled = r.json()
        assert canceled == {
            **before,
            "status": "canceled",
            "updated_at": TIMESTAMP,
            "ended_at": canceled["updated_at"],
            "duration_seconds": 0 if status != "ringing" else canceled["duration_seconds"],
            "billed_duration_seconds": 0,
            "billing_amount_milli_cents": 0,
            "reservation_status": "released",
            "hangup_cause": "canceled",
        }
        assert (
            r.headers["etag"]
            == (await tenant.client.get(f"/v1/calls/{call['id']}")).headers["etag"]
        )
        assert await runner.events(call["id"]) == [*EVENTS_BEFORE[status], "call.canceled"]
        await runner.play()
        assert await get_call(tenant, call["id"]) == canceled

    async def test_a_queued_call_never_rings(self, tenant: Tenant, runner: Runner) -> None:
        agent = await outbound_agent(tenant)
        call = await dispatch(tenant, agent_id=agent["id"], to=destination("0123"))
        r = await tenant.client.post(f"/v1/calls/{call['id']}/cancel")
        assert r.status_code == 200
        await runner.play()
        assert (await get_call(tenant, call["id"]))["status"] == "canceled"
        assert await runner.events(call["id"]) == ["call.queued", "call.canceled"]

    @pytest.mark.parametrize(
        "status", ["in_progress", "completed", "no_answer", "busy", "failed", "canceled"]
    )
    async def test_after_answer_or_end_is_409(
        self, tenant: Tenant, runner: Runner, status: str
    ) -> None:
        call = await manual_call(tenant)
        for step in PATHS[status]:
            await advance(tenant, call["id"], step)
        before = await get_call(tenant, call["id"])
        events = await runner.events(call["id"])
        r = await tenant.client.post(f"/v1/calls/{call['id']}/cancel")
        assert r.status_code == 409
        message = (
            f"call {call['id']} is {status}: only a call that has not been answered can be canceled"
        )
        assert r.json() == error(r, message, "call_not_cancelable")
        assert await get_call(tenant, call["id"]) == before
        assert await runner.events(call["id"]) == events

    async def test_unknown_call_is_404(self, tenant: Tenant) -> None:
        for call_id in (random_id(), "abc"):
            r = await tenant.client.post(f"/v1/calls/{call_id}/cancel")
            assert r.status_code == 404
            assert r.json() == error(r, f"call {call_id} not found", "not_found")

    async def test_idempotent(self, tenant: Tenant, runner: Runner) -> None:
        call = await manual_call(tenant)
        headers = {"Idempotency-Key": "cancel-1"}
        first = await tenant.client.post(f"/v1/calls/{call['id']}/cancel", headers=headers)
        again = await tenant.client.post(f"/v1/calls/{call['id']}/cancel", headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert await runner.events(call["id"]) == ["call.queued", "call.canceled"]
