"""Attempt timeouts on one timer: the deadlines of every attempt in flight, kept in the order
they fall due, with a single timer armed for the earliest.

``asyncio.timeout`` arms and cancels a timer (a heap entry of the event loop) per use; at
thousands of attempts a second that is a noticeable share of the worker's time. Attempts of
one job share its timeout, so their deadlines fall due in the order they began: one dict per
timeout, in insertion order, holds them, finishing an attempt deletes its entry, and one timer
fires at the earliest deadline of all (re-armed for the next when it fires). Expiry follows
``asyncio.timeout``: the attempt's task is cancelled, and the scope turns that cancellation
into a timeout, unless the task was cancelled for another reason too.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

__all__ = ["Deadline", "Deadlines"]


class Deadline:
    """One attempt's deadline; ``async with`` around the work it bounds (see ``Deadlines``)."""

    __slots__ = ("_cancelling", "_owner", "at", "expired", "task", "timeout")

    def __init__(self, owner: Deadlines, timeout: float) -> None:
        self._owner = owner
        self.timeout = timeout
        self.task: asyncio.Task[object] | None = None
        self.at = math.inf
        self.expired = False
        self._cancelling = 0

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task under asyncio
            raise RuntimeError("a Deadline needs a running task")
        self.task = task
        self._cancelling = task.cancelling()
        self._owner.add(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._owner.discard(self)
        task = self.task
        if (
            self.expired
            and task is not None
            and task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
        return False


class Deadlines:
    """The deadlines of the attempts in flight of one event loop (see the module docs)."""

    def __init__(self) -> None:
        self._by_timeout: dict[float, dict[Deadline, None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def after(self, timeout: float) -> Deadline:
        """A deadline ``timeout`` seconds after its scope is entered."""
        return Deadline(self, timeout)

    def add(self, deadline: Deadline) -> None:
        """Start ``deadline`` now."""
        loop = asyncio.get_running_loop()
        deadline.at = loop.time() + deadline.timeout
        group = self._by_timeout.get(deadline.timeout)
        if group is None:
            group = self._by_timeout[deadline.timeout] = {}
        group[deadline] = None
        if deadline.at < self._timer_at:
            self._arm(loop, deadline.at)

    def discard(self, deadline: Deadline) -> None:
        """Forget ``deadline`` (its work ended); the timer is left to find it gone."""
        group = self._by_timeout.get(deadline.timeout)
        if group is not None:
            group.pop(deadline, None)

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = loop.call_at(at, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now = loop.time()
        earliest = math.inf
        for group in self._by_timeout.values():
            while group:
                deadline = next(iter(group))
                if deadline.at > now:
                    earliest = min(earliest, deadline.at)
                    break
                del group[deadline]
                deadline.expired = True
                if deadline.task is not None:
                    deadline.task.cancel()
        if earliest < math.inf:
            self._arm(loop, earliest)
