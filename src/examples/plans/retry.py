"""The retry policy the plans share: backoff 1 s, 5 s, 25 s."""

from __future__ import annotations

from portside.app import RetryPolicy
from portside.ports import Backoff

__all__ = ["PLAN_RETRY"]

PLAN_RETRY = RetryPolicy(attempts=4, backoff=Backoff.schedule(1, 5, 25))
"""Four attempts: the first at once, then after 1 s, 5 s and 25 s; then a dead letter."""
