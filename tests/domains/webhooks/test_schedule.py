"""The retry schedule and the signature, as pure functions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from callingbox.resources.webhooks import Webhooks

from callingbox_server.domains.webhooks.schedule import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    next_delay,
    parse_retry_after,
)
from callingbox_server.domains.webhooks.signing import signature
from tests.domains.webhooks.receivers import verify_signature


class TestSchedule:
    def test_the_delays_after_each_failure(self) -> None:
        assert RETRY_DELAYS == (60, 300, 1800, 7200, 18000, 36000, 86400)
        assert MAX_ATTEMPTS == 8

    @pytest.mark.parametrize("failures", range(1, 8))
    def test_jitter_stays_within_20_percent(self, failures: int) -> None:
        rng = random.Random(failures)
        delays = [next_delay(failures, scale=1.0, rng=rng) for _ in range(500)]
        base = RETRY_DELAYS[failures - 1]

        assert all(d is not None and 0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(set(delays)) > 400  # jittered, not fixed

    def test_the_eighth_failure_exhausts(self) -> None:
        assert next_delay(8, scale=1.0) is None
        assert next_delay(8, scale=1.0, retry_after=10) is None

    def test_the_scale_multiplies_every_delay(self) -> None:
        delay = next_delay(7, scale=0.001, rng=random.Random(1))

        assert delay is not None
        assert 0.8 * 86.4 <= delay <= 1.2 * 86.4

    def test_a_longer_retry_after_wins_up_to_24_hours(self) -> None:
        assert next_delay(1, scale=1.0, retry_after=600) == 600
        assert next_delay(1, scale=1.0, retry_after=10 * 86400) == 86400
        shorter = next_delay(2, scale=1.0, retry_after=5, rng=random.Random(2))
        assert shorter is not None
        assert shorter >= 240

    def test_retry_after_forms(self) -> None:
        now = datetime(2026, 12, 2, tzinfo=UTC)
        assert parse_retry_after("120") == 120
        assert (
            parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
        )
        assert parse_retry_after("soon") is None
        assert parse_retry_after(None) is None


class TestSignature:
    def test_verifies_with_the_official_client_and_from_the_spec(self) -> None:
        body = b'{"id":"d","type":"call.completed","created":1,"api_version":"2026-04","data":{}}'
        header = signature("whsec_abc", int(datetime.now(UTC).timestamp()), body)

        assert Webhooks.construct_event(body, header, "whsec_abc").type == "call.completed"
        verify_signature("whsec_abc", header, body)

    def test_a_known_vector(self) -> None:
        # From: printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
        assert signature("secret", 1700000000, b"{}") == (
            "t=1700000000,v1=" + "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        )
