"""Retry delays from a job's stored BullMQ ``backoff`` option (built-in and custom types)."""

from __future__ import annotations

import random
from typing import Any

from portside.adapters.bullmq.options import SCHEDULE_BACKOFF

__all__ = ["UnknownBackoffError", "retry_delay"]


class UnknownBackoffError(ValueError):
    """The job names a backoff type that neither BullMQ nor portside knows."""


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def _jittered(delay: float, jitter: float) -> int:
    if jitter <= 0:
        return round(delay)
    low = delay * (1 - min(jitter, 1.0))
    return int(random.random() * delay * min(jitter, 1.0) + low)


def retry_delay(backoff: Any, failures: int) -> int:
    """The delay in milliseconds before the retry that follows failure number ``failures``.

    Mirrors Node BullMQ: a number means a fixed delay; ``fixed`` waits ``delay``;
    ``exponential`` waits ``delay * 2**(failures-1)``; both honour ``jitter``. The custom type
    ``schedule`` (portside's explicit lists) waits ``delays[failures-1]``, repeating the last
    entry. No backoff means an immediate retry.

    Raises:
        UnknownBackoffError: for any other custom type.
    """
    n = max(failures, 1)
    if backoff is None:
        return 0
    if isinstance(backoff, int | float) and not isinstance(backoff, bool):
        return max(0, round(backoff))
    if not isinstance(backoff, dict):
        raise UnknownBackoffError(f"backoff {backoff!r} is neither a number nor an object")
    kind = backoff.get("type")
    delay = _number(backoff.get("delay"))
    jitter = _number(backoff.get("jitter"))
    if kind == "fixed":
        return max(0, _jittered(delay, jitter))
    if kind == "exponential":
        return max(0, _jittered(delay * 2 ** (n - 1), jitter))
    if kind == SCHEDULE_BACKOFF:
        delays = backoff.get("delays")
        if isinstance(delays, list) and delays:
            return max(0, round(_number(delays[min(n, len(delays)) - 1])))
    raise UnknownBackoffError(f"backoff type {kind!r} is not fixed, exponential or schedule")
