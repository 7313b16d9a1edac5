"""What a contract suite needs from an adapter besides its port: time and drain control.

A third party runs the suites against its own adapter by providing a fixture that yields an
object satisfying one of these protocols (see ``docs/contracts.md``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from portside.ports import JobOutcome, OutboxPort, QueuePort

__all__ = ["OutboxDriver", "QueueDriver"]


@runtime_checkable
class QueueDriver(Protocol):
    """A queue adapter under test, isolated from every other test."""

    @property
    def queue(self) -> QueuePort:
        """The adapter under test."""
        ...

    async def drain(self, queue: str) -> list[JobOutcome]:
        """Run the jobs of ``queue`` that are due now until none is waiting or active.

        Uses the handler(s) registered with ``queue.consume(...)`` (started or not) and returns
        the outcome of every attempt that ended during the call, in the order they ended.
        Delayed jobs that are not yet due stay delayed.
        """
        ...

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for delays, retry backoffs, rate-limit windows and dedupe TTLs.

        Calls add up, like a clock: ``advance(0.5)`` twice equals ``advance(1)``. Fakes move
        their virtual clock; a real adapter shifts its stored due times back by ``seconds``
        (test data only) rather than waiting.
        """
        ...


@runtime_checkable
class OutboxDriver(Protocol):
    """An outbox adapter under test, isolated from every other test."""

    @property
    def outbox(self) -> OutboxPort:
        """The adapter under test."""
        ...

    async def another_outbox(self) -> OutboxPort:
        """A second adapter instance on the same storage (a second publisher, O6)."""
        ...
