"""Queue-wide caps from the registry, set on the queues when a worker starts (Q13)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from portside.app.logs import event
from portside.app.registry import Registry
from portside.ports import QueuePort

__all__ = ["apply_queue_caps"]

_log = logging.getLogger("portside.worker")


async def apply_queue_caps(registry: Registry, queue: QueuePort, queues: Iterable[str]) -> None:
    """Give each of ``queues`` the ``queue_concurrency`` its jobs declare, idempotently.

    A cap that is already in place is left alone (no write, no log line), so any number of
    worker processes can start at once. A queue whose jobs declare no cap keeps whatever cap
    it has: one set by a Node fleet or an operator is not removed behind their back; the
    worker logs ``queue.concurrency_unmanaged`` naming it instead. The queues are read
    concurrently: one round trip in all, however many queues.
    """
    await asyncio.gather(
        *(_apply(queue, name, registry.queue_settings(name).queue_concurrency) for name in queues)
    )


async def _apply(queue: QueuePort, name: str, wanted: int | None) -> None:
    current = await queue.queue_concurrency(name)
    if wanted is None:
        if current is not None:
            event(
                _log,
                "queue.concurrency_unmanaged",
                queue=name,
                limit=current,
                fix="declare queue_concurrency on the queue's jobs, or remove the cap "
                f"with QueuePort.set_queue_concurrency({name!r}, None)",
            )
        return
    if current != wanted:
        await queue.set_queue_concurrency(name, wanted)
        event(_log, "queue.concurrency_set", queue=name, limit=wanted, previous=current)
