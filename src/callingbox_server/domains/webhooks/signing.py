"""``CallingBox-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
the scheme Stripe signs webhooks with; the official client's ``Webhooks.construct_event``
checks it."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for ``body`` sent at ``timestamp``: each attempt signs afresh."""
    signed = b"%d." % timestamp + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
