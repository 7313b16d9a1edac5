"""Reconnect backoff: exponential delays with jitter, so clients do not retry in lockstep.

Every adapter waits this way before reopening a lost connection (Redis or Postgres) or
retrying a background read; a job's retry policy is a different thing (``ports.Backoff``).
"""

from __future__ import annotations

import random

__all__ = ["ReconnectBackoff", "reconnect_delay"]


def reconnect_delay(failures: int, initial: float, maximum: float) -> float:
    """The wait after ``failures`` consecutive failures (0 for the first).

    The step doubles from ``initial`` up to ``maximum``; the delay is a random point in the
    upper half of the step (50-100 %).
    """
    step = min(maximum, initial * 2.0 ** min(failures, 62))
    return step / 2 + random.uniform(0, step / 2)


class ReconnectBackoff:
    """``reconnect_delay`` with its failure count kept: ``next_delay()`` after each failure,
    ``reset()`` after a success.

    Args:
        initial: The first delay's step in seconds.
        maximum: The cap in seconds (at least ``initial``).
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = max(maximum, initial)
        self.failures = 0

    @property
    def maximum(self) -> float:
        """The cap in seconds."""
        return self._maximum

    def next_delay(self) -> float:
        """The delay before the next try; each call counts one more failure."""
        delay = reconnect_delay(self.failures, self._initial, self._maximum)
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self.failures = 0
