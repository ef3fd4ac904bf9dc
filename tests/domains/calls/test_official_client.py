"""The official ``callingbox`` client (0.1.0), unchanged, dispatching and following calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import callingbox
import pytest
from callingbox.types.call import Call, TranscriptSegment

from tests.domains.calls.calls import CALLER_ANSWER, OPENING, destination
from tests.fixtures.numbers import area_code, phone
from tests.fixtures.servers import running_server

pytestmark = pytest.mark.system
CALLS = 5


@pytest.fixture(scope="module")
def quick_server(database_url: str) -> Iterator[str]:
    settings = {
        "CALLINGBOX_SANDBOX_RING_SECONDS": "0.05",
        "CALLINGBOX_SANDBOX_TALK_SECONDS": "0.05",
    }
    with running_server(database_url, settings=settings) as base_url:
        yield base_url


def _until_terminal(client: callingbox.Callingbox, call_id: str) -> Call:
    deadline = time.monotonic() + 30
    while True:
        call = client.calls.retrieve(call_id)
        if call.status in ("completed", "no_answer", "busy", "canceled", "failed"):
            return call
        assert time.monotonic() < deadline, f"call {call_id} still {call.status}"
        time.sleep(0.05)


def _exercise(base_url: str, key: str) -> None:
    with callingbox.Callingbox(api_key=key, base_url=base_url) as client:
        number = client.numbers.purchase(phone(0, area_code()))
        created = [
            client.calls.create(
                destination("0123"),
                prompt=f"Confirm order {n}.",
                returns={"confirmed": "boolean", "items": "number"},
            )
            for n in range(CALLS)
        ]
        assert all(isinstance(call, Call) for call in created)
        assert [call.status for call in created] == ["queued"] * CALLS
        assert created[0].from_number == number.e164
        assert created[0].prompt.endswith("\n\nConfirm order 0.")

        done = _until_terminal(client, created[0].id)
        assert (done.status, done.result_status) == ("completed", "completed")
        assert done.result == {"confirmed": True, "items": 1}
        assert done.billed_duration_seconds is not None
        assert done.billing_amount_milli_cents == 150 * done.billed_duration_seconds
        assert done.reservation_status == "settled"

        segments = client.calls.retrieve_transcript(created[0].id)
        assert all(isinstance(segment, TranscriptSegment) for segment in segments)
        assert [(s.sequence_no, s.role, s.source) for s in segments] == [
            (1, "agent", "tts"),
            (2, "caller", "stt"),
            (3, "agent", "tts"),
        ]
        assert [s.text for s in segments][:2] == [OPENING + "Confirm order 0.", CALLER_ANSWER]

        newest_first = [call.id for call in reversed(created)]
        page = client.calls.list(limit=2)
        assert page.has_more is True
        assert [call.id for call in page] == newest_first[:2]
        assert [call.id for call in client.calls.iter_calls(limit=2)] == newest_first
        backward = client.calls.iter_calls(limit=2, ending_before=created[0].id)
        assert [call.id for call in backward] == newest_first[:-1]

        with pytest.raises(callingbox.APIError) as refused:
            client.calls.create(destination("0007"), prompt="Hi")
        assert refused.value.status_code == 502
        with pytest.raises(callingbox.APIError) as missing:
            client.calls.retrieve("5f0c6b1e-0000-4000-8000-000000000000")
        assert missing.value.status_code == 404


async def test_official_client_calls(quick_server: str, live_key: str) -> None:
    await asyncio.to_thread(_exercise, quick_server, live_key)
