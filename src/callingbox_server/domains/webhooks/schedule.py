"""When a failed delivery is attempted again (section 6 of the contract, "Sending")."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Seconds after each failed automatic attempt: +1 min, +5 min, +30 min, +2 h, +5 h, +10 h,
# +24 h. The eighth failure exhausts the delivery.
RETRY_DELAYS = (60.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 86400.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.2
MAX_RETRY_AFTER = 86400.0


def next_delay(
    failures: int,
    *,
    scale: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after ``failures`` failed automatic attempts (1 or more),
    or None when the delivery is exhausted.

    The schedule's delay gets ±20 % jitter (receivers that failed together are not retried in
    a herd) and is multiplied by ``scale``; a receiver's ``Retry-After`` is its own request in
    real seconds, honoured when longer, up to 24 h.
    """
    if failures >= MAX_ATTEMPTS:
        return None
    jitter = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    delay = RETRY_DELAYS[failures - 1] * jitter * scale
    if retry_after is not None and retry_after > delay:
        return min(retry_after, MAX_RETRY_AFTER)
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
