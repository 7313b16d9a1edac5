"""A virtual clock: time in the fakes passes only when a test says so."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from portside.ports import ValidationError

__all__ = ["DEFAULT_START", "VirtualClock"]

DEFAULT_START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: every fresh clock starts here, so runs are reproducible."""

TimeListener = Callable[[float], None]


def _seconds(value: object, field: str, *, allow_negative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            f"{field} must be a number of seconds, got {type(value).__name__}",
            fix="pass an int or float",
            field=field,
        )
    if not math.isfinite(value) or (value < 0 and not allow_negative):
        raise ValidationError(
            f"{field} is {value!r}",
            fix="pass a finite number of seconds, 0 or more"
            if not allow_negative
            else "pass a finite number",
            field=field,
        )
    return float(value)


class VirtualClock:
    """Epoch seconds that move only through :meth:`advance`.

    The in-memory queue and outbox read it for timestamps, delays, backoff, rate-limit
    windows and schedules; share one clock between them to move both at once.

    Args:
        start: The epoch second the clock starts at (default :data:`DEFAULT_START`).
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = _seconds(start, "start", allow_negative=True)
        self._listeners: list[TimeListener] = []

    def now(self) -> float:
        """The current virtual time, in epoch seconds."""
        return self._now

    def datetime(self) -> datetime:
        """The current virtual time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and tell every listener; return the new time.

        Raises:
            ValidationError: ``seconds`` is negative, not finite or not a number.
        """
        self._now += _seconds(seconds, "seconds")
        for listener in list(self._listeners):
            listener(self._now)
        return self._now

    def on_advance(self, listener: TimeListener) -> Callable[[], None]:
        """Call ``listener(now)`` after every advance; returns a function that unregisters it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def __repr__(self) -> str:
        return f"VirtualClock({self.datetime().isoformat()})"
