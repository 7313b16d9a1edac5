"""Drain and pause helpers that behave the same on the fakes and the real adapters (H3)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from portside.infra import Infra, get_infra
from portside.ports import (
    ConfigurationError,
    JobOutcome,
    OutboxErrorCallback,
    OutboxPort,
    ValidationError,
    WorkerHandle,
)
from portside.testing.events import EventCapture

__all__ = ["capture_events", "drain_outbox_once", "drain_queue", "paused"]


async def drain_queue(queue: str, *, infra: Infra | None = None) -> list[JobOutcome]:
    """Run the due jobs of ``queue`` until it is idle; return every attempt's outcome in order.

    Uses the handlers registered with ``infra.queue.consume(queue, ...)`` (started or not).
    Delayed jobs that are not yet due stay delayed (advance the fake's clock for those).

    Args:
        queue: The queue name.
        infra: Defaults to the installed one (``get_infra()``: the ``infra``/``fake_infra``
            fixture's).
    """
    port = (infra or get_infra()).queue
    drain: Callable[[str], Awaitable[list[JobOutcome]]] | None = getattr(port, "drain", None)
    if drain is None:
        raise ConfigurationError(
            f"the queue adapter {type(port).__name__} has no drain(queue) method",
            fix="use portside's BullMQQueue or InMemoryQueue, or give your adapter "
            "`async def drain(queue) -> list[JobOutcome]`",
        )
    return await drain(queue)


async def drain_outbox_once(stream: str | None = None, *, infra: Infra | None = None) -> int:
    """Publish every outbox event committed before the call (of ``stream``, or all).

    Returns:
        How many events were published.
    """
    return await (infra or get_infra()).outbox.drain_once(stream)


@asynccontextmanager
async def paused(
    target: str | OutboxPort | WorkerHandle,
    *,
    infra: Infra | None = None,
    on_error: OutboxErrorCallback | None = None,
) -> AsyncIterator[None]:
    """Hold a queue, a worker or the outbox publisher so a test can look at the state between.

    - a queue name: ``pause`` the queue (for every worker) and ``resume`` it afterwards,
      unless it was already paused;
    - a ``WorkerHandle``: pause that worker only, resume it afterwards;
    - an outbox: stop its publisher (events stay pending) and start it again afterwards, with
      ``on_error``, if it was running.

    Args:
        target: What to hold.
        infra: For a queue name; defaults to the installed one.
        on_error: Passed to the outbox's ``start`` when it is restarted.
    """
    if isinstance(target, str):
        port = (infra or get_infra()).queue
        was_paused = await port.is_paused(target)
        await port.pause(target)
        try:
            yield
        finally:
            if not was_paused:
                await port.resume(target)
    elif isinstance(target, WorkerHandle):
        await target.pause()
        try:
            yield
        finally:
            await target.resume()
    elif isinstance(target, OutboxPort):
        was_running = target.running
        await target.stop()
        try:
            yield
        finally:
            if was_running:
                await target.start(on_error=on_error)
    else:
        raise ValidationError(
            f"paused() takes a queue name, a WorkerHandle or an OutboxPort, got "
            f"{type(target).__name__}",
            fix="pass e.g. paused('emails') or paused(infra.outbox)",
            field="target",
        )


def capture_events(queue: str, *, infra: Infra | None = None) -> EventCapture:
    """Start capturing the events of ``queue`` (see ``EventCapture``); close it when done."""
    return EventCapture((infra or get_infra()).queue, queue)
