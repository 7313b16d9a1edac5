"""Queue control on BullMQ's scripts: counts, state, pause, purge, obliterate, retry, advance."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from portside.adapters.bullmq.jobs import KIND_FIELD, job_info
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.transport.scripts import ensure_scripts, run_script, script
from portside.ports import JobInfo, QueueCounts, ValidationError

__all__ = [
    "advance",
    "counts",
    "get_job",
    "is_paused",
    "obliterate",
    "purge",
    "queue_concurrency",
    "retry_failed",
    "set_paused",
    "set_queue_concurrency",
]

_COUNT_TYPES = (
    "wait",
    "paused",
    "active",
    "delayed",
    "completed",
    "failed",
    "prioritized",
    "waiting-children",
)
_STATE_KEYS = (
    "completed",
    "failed",
    "delayed",
    "active",
    "wait",
    "paused",
    "waiting-children",
    "prioritized",
)


def _raise_first(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


async def _pipeline(
    client: Redis, fill: Callable[[Any], None], scripts: tuple[str, ...], *, transaction: bool
) -> list[Any]:
    """Run a pipeline that calls Lua ``scripts`` by SHA; if the server does not know them
    (first use, restart, ``SCRIPT FLUSH``), load them and run it once more. A command that
    failed with NOSCRIPT did nothing, so the second run is safe."""
    for attempt in range(2):
        async with client.pipeline(transaction=transaction) as pipe:
            fill(pipe)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        if attempt or not any(isinstance(reply, NoScriptError) for reply in replies):
            break
        await ensure_scripts(client, *scripts)
    _raise_first(replies)
    return replies


async def counts(client: Redis, queue: QueueName) -> QueueCounts:
    """Jobs per state; when the queue is paused its waiting jobs count as ``paused``."""

    def fill(pipe: Any) -> None:
        pipe.execute_command(*script("getCounts").command((queue.base,), _COUNT_TYPES))
        pipe.hexists(queue.key("meta"), "paused")

    raw, paused = await _pipeline(client, fill, ("getCounts",), transaction=False)
    found = dict(zip(_COUNT_TYPES, (int(n) for n in raw), strict=True))
    waiting = found["wait"] + found["prioritized"]
    return QueueCounts(
        waiting=0 if paused else waiting,
        paused=found["paused"] + (waiting if paused else 0),
        active=found["active"],
        delayed=found["delayed"],
        completed=found["completed"],
        failed=found["failed"],
        waiting_children=found["waiting-children"],
    )


async def is_paused(client: Redis, queue: QueueName) -> bool:
    """Whether BullMQ's ``paused`` flag is set in the queue's meta hash."""
    return bool(await client.hexists(queue.key("meta"), "paused"))


async def set_paused(client: Redis, queue: QueueName, paused: bool) -> None:
    """Pause or resume the queue for every worker (BullMQ ``Queue.pause``/``resume``)."""
    k = queue.key
    src, dst = ("wait", "paused") if paused else ("paused", "wait")
    keys = tuple(k(x) for x in (src, dst, "meta", "prioritized", "events", "delayed", "marker"))
    await run_script(client, script("pause"), keys, ("paused" if paused else "resumed",))


async def set_queue_concurrency(client: Redis, queue: QueueName, limit: int | None) -> None:
    """Set or remove BullMQ's queue-wide cap: field ``concurrency`` of the meta hash, which
    Node BullMQ 5 writes with ``queue.setGlobalConcurrency(n)`` and its fetch scripts read (Q13).

    The marker is touched too, so workers parked at the old cap look again at once.
    """
    meta, marker = queue.key("meta"), queue.key("marker")
    async with client.pipeline(transaction=True) as pipe:
        if limit is None:
            pipe.hdel(meta, "concurrency")
        else:
            pipe.hset(meta, "concurrency", str(limit))
        pipe.zadd(marker, {"0": 0})
        await pipe.execute()


async def queue_concurrency(client: Redis, queue: QueueName) -> int | None:
    """The queue-wide cap in the meta hash, or None (also for a value no script can read)."""
    raw = await client.hget(queue.key("meta"), "concurrency")
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None


async def get_job(client: Redis, queue: QueueName, job_id: str) -> JobInfo | None:
    """A snapshot of one job, or None when no such job exists."""
    keys = tuple(queue.key(x) for x in _STATE_KEYS)

    def fill(pipe: Any) -> None:
        pipe.hgetall(queue.job_key(job_id))
        pipe.execute_command(*script("getStateV2").command(keys, (job_id, queue.job_key(job_id))))
        pipe.hexists(queue.key("meta"), "paused")

    fields, state, paused = await _pipeline(client, fill, ("getStateV2",), transaction=True)
    if not fields:
        return None
    return job_info(queue.portside, job_id, fields, str(state), bool(paused), queue.root)


async def purge(client: Redis, queue: QueueName, *, delayed: bool) -> int:
    """BullMQ ``drain``: remove waiting (and delayed) jobs; returns how many went.

    Jobs that carry a job scheduler's next iteration are kept, as BullMQ does.
    """
    k = queue.key
    keys = tuple(k(x) for x in ("wait", "paused", "delayed", "prioritized", "repeat"))

    def fill(pipe: Any) -> None:
        for round_ in range(2):
            pipe.llen(k("wait"))
            pipe.llen(k("paused"))
            pipe.zcard(k("prioritized"))
            pipe.zcard(k("delayed"))
            if round_ == 0:
                pipe.execute_command(
                    *script("drain").command(keys, (queue.base, "1" if delayed else "0"))
                )

    replies = await _pipeline(client, fill, ("drain",), transaction=True)
    return sum(int(n) for n in replies[:4]) - sum(int(n) for n in replies[5:])


async def retry_failed(client: Redis, queue: QueueName, job_id: str | None) -> int:
    """Move failed jobs back to waiting with their attempt count reset; returns how many."""
    if job_id is not None:
        ids = [job_id] if await client.zscore(queue.key("failed"), job_id) is not None else []
    else:
        ids = [str(member) for member in await client.zrange(queue.key("failed"), 0, -1)]
    moved = 0
    for start in range(0, len(ids), 500):
        moved += await _reprocess(client, queue, ids[start : start + 500])
    return moved


async def _reprocess(client: Redis, queue: QueueName, ids: list[str]) -> int:
    k = queue.key
    lua = script("reprocessJob")
    args_tail = ("LPUSH", "failedReason", "failed", "1", "0")

    def fill(pipe: Any) -> None:
        for job_id in ids:
            keys = (
                queue.job_key(job_id),
                k("events"),
                k("failed"),
                k("wait"),
                k("meta"),
                k("active"),
                k("marker"),
                k("prioritized"),
                k("pc"),
            )
            pipe.execute_command(*lua.command(keys, (job_id, *args_tail)))
            pipe.hdel(queue.job_key(job_id), KIND_FIELD)

    replies = await _pipeline(client, fill, ("reprocessJob",), transaction=False)
    return sum(1 for reply in replies[::2] if reply == 1)


def _refuse_obliterate(queue: QueueName, active: int | None) -> ValidationError:
    count = f"{active} active job(s)" if active else "active jobs"
    return ValidationError(
        f"queue {queue.portside!r} has {count}",
        fix="wait for them to finish (drain the queue or close its workers) or pass force=True",
        field="force",
    )


async def obliterate(client: Redis, queue: QueueName, *, force: bool) -> None:
    """Remove the queue and all its data (BullMQ ``Queue.obliterate``).

    Raises:
        ValidationError: the queue has active jobs and ``force`` is False.
    """
    lua = script("obliterate")
    active = await client.llen(queue.key("active"))
    if active and not force:
        raise _refuse_obliterate(queue, active)
    await set_paused(client, queue, True)
    while True:
        cursor = await run_script(
            client, lua, (queue.key("meta"), queue.base), (1000, "force" if force else "")
        )
        if cursor == -2:
            raise _refuse_obliterate(queue, None)
        if cursor in (0, None):
            break
    await client.delete(queue.key("limiter"))


_ADVANCE_KEYS = ("delayed", "wait", "prioritized", "pc", "marker", "meta", "events", "limiter")


async def advance(
    client: Redis, queues: Iterable[QueueName], shift_ms: int, max_events: int
) -> None:
    """Shift the timestamps of delayed jobs, rate-limit windows and dedupe TTLs of ``queues``
    back by ``shift_ms``, as if that time had passed (portside's ``advance`` script)."""
    lua = script("advance")
    for queue in queues:
        keys = tuple(queue.key(kind) for kind in _ADVANCE_KEYS)
        now = int(time.time() * 1000)
        await run_script(client, lua, keys, (queue.base, shift_ms, now, max_events))
