"""``wait_for``: wait for a condition with a deadline and a message saying what was awaited."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

__all__ = ["WaitTimeout", "wait_for"]

Condition = Callable[[], bool | Awaitable[bool]]

_FIRST_INTERVAL = 0.001
_MAX_INTERVAL = 0.05


class WaitTimeout(AssertionError):
    """A ``wait_for`` deadline passed; the message says what was awaited and for how long.

    An ``AssertionError`` so that pytest reports it as a test failure, not an error.
    """


async def wait_for(
    condition: Condition,
    *,
    timeout: float = 10.0,  # noqa: ASYNC109 - documented harness API (docs/harness.md)
    message: str,
    interval: float = _MAX_INTERVAL,
) -> None:
    """Return as soon as ``condition()`` is true; fail after ``timeout`` seconds.

    The condition (a function returning a bool, or an awaitable bool) is checked at once, then
    again at growing intervals (1 ms up to ``interval``). Prefer an event the code under test
    offers (``EventCapture.wait_for``, ``drain_queue``) when there is one; use this for state
    that can only be observed by looking at it.

    Args:
        condition: What must become true, e.g. ``lambda: len(seen) == 3``.
        timeout: Seconds before giving up.
        message: What is awaited, phrased to complete "waiting for ...".
        interval: The longest pause between two checks.

    Raises:
        WaitTimeout: With ``message``, the timeout and the last exception the condition raised.
    """
    if not message:
        raise ValueError("wait_for needs a message saying what it waits for")
    deadline = time.monotonic() + timeout
    pause = _FIRST_INTERVAL
    last_error: Exception | None = None
    while True:
        try:
            outcome = condition()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome:
                return
            last_error = None
        except Exception as exc:  # the condition is not observable yet; keep trying
            last_error = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f" (last check raised {type(last_error).__name__}: {last_error})"
            raise WaitTimeout(
                f"timed out after {timeout:g} s waiting for {message}"
                + (detail if last_error else "")
            ) from last_error
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, interval)
