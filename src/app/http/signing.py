"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``, sent as ``t=<ts>,v1=<hex>``."""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["SIGNATURE_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Portside-Signature"
DEFAULT_TOLERANCE = 300.0


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Portside-Signature`` value for ``body`` sent at ``timestamp`` (epoch seconds)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={_digest(secret, moment, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``header`` is a valid signature of ``body`` made within ``tolerance`` seconds.

    What a receiver runs on each delivery (constant-time comparison; a replay of an old
    delivery fails the time check).
    """
    fields: dict[str, str] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, value)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    moment = int(stamp)
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance:
        return False
    return hmac.compare_digest(
        given.encode("ascii", "replace"), _digest(secret, moment, body).encode()
    )
