"""Closing an adapter within its time bound, aborting the connections of whatever hangs."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from portside.adapters.bullmq.events import BullMQEventStream
from portside.adapters.bullmq.settings import BullMQSettings
from portside.adapters.bullmq.transport.blocking import BlockingConnection
from portside.adapters.bullmq.transport.redis_internals import abort_pool
from portside.adapters.bullmq.worker.handle import BullMQWorker

__all__ = ["close_within_bound"]

log = logging.getLogger("portside.adapters.bullmq")

_CANCEL_WAIT = 1.0
"""How long ``close()`` waits for its own tasks to end once they were cancelled."""


async def close_within_bound(
    *,
    workers: list[BullMQWorker],
    streams: dict[BullMQEventStream, BlockingConnection],
    positions: set[asyncio.Task[None]],
    client: Redis,
    settings: BullMQSettings,
    safe_url: str,
) -> None:
    """Close ``workers`` (with ``close_grace``) and ``streams``, then ``client``, all within
    ``close_grace + close_timeout``; what does not finish in time is logged and its sockets
    are aborted. ``positions`` are the event streams' position reads, already cancelled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.close_grace + settings.close_timeout
    parts: dict[asyncio.Task[None], str] = {}
    closing_client: dict[asyncio.Task[None], str] = {}

    def abort_all() -> None:
        for worker in workers:
            worker.abort()
        for connection in streams.values():
            connection.abort()

    try:
        for worker in workers:
            task = asyncio.create_task(worker.close(settings.close_grace))
            parts[task] = f"worker of {worker.queue.portside!r}"
        for stream in streams:
            parts[asyncio.create_task(stream.aclose())] = "event stream"
        pending = await _await_parts(parts, deadline, settings, safe_url)
        if pending:
            abort_all()
            await _cancel_parts(pending, parts)
        closing_client[asyncio.create_task(client.aclose())] = "Redis client"
        pending = await _await_parts(
            closing_client, max(deadline, loop.time() + _CANCEL_WAIT), settings, safe_url
        )
        if pending:
            abort_pool(client.connection_pool)
            await _cancel_parts(pending, closing_client)
        if positions:
            await asyncio.wait(list(positions), timeout=_CANCEL_WAIT)
    except BaseException:
        # close() itself was cancelled (an outer timeout): leave nothing running.
        abort_all()
        abort_pool(client.connection_pool)
        for task in (*parts, *closing_client):
            task.cancel()
        raise


async def _await_parts(
    parts: dict[asyncio.Task[None], str],
    deadline: float,
    settings: BullMQSettings,
    safe_url: str,
) -> set[asyncio.Task[None]]:
    """Wait for ``parts`` until loop time ``deadline``; log what failed or did not finish."""
    if not parts:
        return set()
    budget = max(deadline - asyncio.get_running_loop().time(), 0.0)
    done, pending = await asyncio.wait(parts, timeout=budget)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("closing the %s failed: %r", parts[task], task.exception())
    if pending:
        log.warning(
            "BullMQQueue.close(): %s did not finish within close_grace + close_timeout "
            "(%gs + %gs) on %s; aborting their connections (jobs left locked are requeued "
            "by the stalled check of another worker)",
            ", ".join(sorted(parts[task] for task in pending)),
            settings.close_grace,
            settings.close_timeout,
            safe_url,
        )
    return pending


async def _cancel_parts(
    pending: set[asyncio.Task[None]], parts: dict[asyncio.Task[None], str]
) -> None:
    """Cancel what is left once the sockets are aborted, and wait briefly for it."""
    for task in pending:
        task.cancel()
    ended, left = await asyncio.wait(pending, timeout=_CANCEL_WAIT)
    for task in ended:
        if not task.cancelled():
            task.exception()  # retrieved: the sockets were aborted under it
    if left:
        log.warning(
            "BullMQQueue.close(): %s still running after cancellation (a handler that "
            "ignores cancellation?)",
            ", ".join(sorted(parts[task] for task in left)),
        )
