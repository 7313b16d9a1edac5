"""The workers connected to a queue, read from ``CLIENT LIST`` (Node BullMQ's ``getWorkers``).

A worker names its connections ``<prefix>:<base64 queue name>:w:<worker name>`` (BullMQ's
scheme; a worker with no name of its own uses ``<prefix>:<base64 queue name>``). A portside
worker holds two connections of one name; it is listed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis

from portside.adapters.bullmq.names import QueueName
from portside.ports import WorkerInfo

__all__ = ["list_workers", "workers_of"]


def _seconds(raw: Any) -> float:
    try:
        return float(raw or 0)
    except (TypeError, ValueError):
        return 0.0


def workers_of(clients: Iterable[Mapping[str, Any]], queue: QueueName) -> list[WorkerInfo]:
    """The workers of ``queue`` among ``CLIENT LIST``'s clients, longest connected first."""
    base = queue.client_name()
    named = f"{base}:w:"
    found: dict[str, WorkerInfo] = {}
    for fields in clients:
        name = str(fields.get("name") or "")
        if name != base and not name.startswith(named):
            continue
        worker = WorkerInfo(
            name=name[len(named) :] if name.startswith(named) else name,
            address=str(fields.get("addr") or "") or None,
            age=_seconds(fields.get("age")),
            idle=_seconds(fields.get("idle")),
        )
        seen = found.get(worker.name)
        if seen is None:
            found[worker.name] = worker
        else:
            # The connection that worked last tells how long the worker has been idle.
            found[worker.name] = seen.model_copy(
                update={"age": max(seen.age, worker.age), "idle": min(seen.idle, worker.idle)}
            )
    return sorted(found.values(), key=lambda worker: (-worker.age, worker.name))


async def list_workers(client: Redis, queue: QueueName) -> list[WorkerInfo]:
    """The workers connected to ``queue`` now."""
    clients = await client.client_list(_type="normal")
    return workers_of(clients, queue)
