"""Exponential back-off with jitter, so reconnecting clients do not retry in lockstep."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each randomised to 50-100 %.

    Args:
        initial: The first delay in seconds.
        maximum: The cap in seconds.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = max(maximum, initial)
        self.attempts = 0

    @property
    def maximum(self) -> float:
        """The cap in seconds."""
        return self._maximum

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failed attempt."""
        ceiling = min(self._maximum, self._initial * 2.0 ** min(self.attempts, 62))
        self.attempts += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self.attempts = 0
