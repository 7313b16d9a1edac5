"""The queue-wide cap (Q13) and job retention (Q15) in BullMQ's own layout, on real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as redis
from pydantic import BaseModel

from portside.adapters.bullmq import BullMQQueue
from portside.app import JobDefinition
from portside.app.dispatching import job_options
from portside.ports import Job, QueuePort, Retention
from portside.testing.waiting import wait_for

pytestmark = pytest.mark.integration


async def test_q13_the_cap_is_the_meta_field_node_bullmq_reads(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q13: the cap is field ``concurrency`` of ``<prefix>:<queue>:meta``, where Node's
    ``queue.setGlobalConcurrency(n)`` puts it; removing it deletes the field."""
    meta = f"{redis_prefix}:media:colors:meta"
    await queue_adapter.set_queue_concurrency("media:colors", 5)
    assert await raw_redis.hget(meta, "concurrency") == "5"

    await raw_redis.hset(meta, "concurrency", "7")  # what Node's setGlobalConcurrency(7) writes
    assert await queue_adapter.queue_concurrency("media:colors") == 7

    await queue_adapter.set_queue_concurrency("media:colors", None)
    assert not await raw_redis.hexists(meta, "concurrency")
    assert await queue_adapter.queue_concurrency("media:colors") is None


async def test_q13_a_worker_that_stops_taking_jobs_hands_its_slot_to_a_parked_one(
    make_adapter: Callable[..., BullMQQueue],
) -> None:
    """Q13: under a cap of 1, worker B parks (blocking up to 10 s) while A holds the slot.
    When A pauses and its job ends, A gives the slot back and B starts the waiting job at
    once, not after its 10 s block."""
    first, second = make_adapter(block_timeout=10), make_adapter(block_timeout=10)
    release = asyncio.Event()
    started: list[tuple[str, str]] = []

    def worker(label: str) -> Callable[[Job], Any]:
        async def handler(job: Job) -> Any:
            started.append((label, job.name))
            if job.name == "holder":
                await release.wait()
            return label

        return handler

    await first.set_queue_concurrency("cap:one", 1)
    holder = first.consume("cap:one", worker("A"), concurrency=2)
    await holder.start()
    waiting = second.consume("cap:one", worker("B"), concurrency=2)
    try:
        await first.enqueue("cap:one", "holder", {})
        await wait_for(lambda: ("A", "holder") in started, timeout=10, message="A to take it")
        await waiting.start()
        await first.enqueue("cap:one", "next", {})
        # Both workers look, find the queue at its cap and park on BullMQ's marker.
        await wait_for(
            lambda: waiting.status().last_fetch_at is not None,
            timeout=10,
            message="worker B to fetch once",
        )
        assert [name for _, name in started] == ["holder"], started
        await holder.pause()
        release.set()
        await wait_for(
            lambda: ("B", "next") in started,
            timeout=4,
            message="worker B to take the freed slot well before its 10 s block ends",
        )
    finally:
        release.set()
        await holder.close(grace=5)
        await waiting.close(grace=5)


async def test_q13_raising_the_cap_wakes_parked_workers_at_once(
    make_adapter: Callable[..., BullMQQueue],
) -> None:
    """Q13: with a cap of 1, the second job waits while the worker blocks for up to 10 s;
    raising the cap to 2 starts it at once (the marker is touched), not after the block."""
    adapter = make_adapter(block_timeout=10)
    release = asyncio.Event()
    started: list[str] = []

    async def hold(job: Job) -> Any:
        started.append(job.name)
        await release.wait()

    await adapter.set_queue_concurrency("cap:raised", 1)
    worker = adapter.consume("cap:raised", hold, concurrency=2)
    await worker.start()
    try:
        await adapter.enqueue("cap:raised", "first", {})
        await wait_for(lambda: started == ["first"], timeout=10, message="the first job")
        await adapter.enqueue("cap:raised", "second", {})
        await adapter.set_queue_concurrency("cap:raised", 2)
        await wait_for(
            lambda: "second" in started,
            timeout=4,
            message="the second job to start once the cap was raised, before the 10 s block",
        )
    finally:
        release.set()
        await worker.close(grace=5)


class _Work(BaseModel):
    n: int


async def _work(payload: _Work, ctx: Any) -> None:
    return None


async def test_q15_the_platform_writes_retention_in_bullmq_shape_and_redis_keeps_at_most_n(
    queue_adapter: QueuePort, raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q15: jobs enqueued with a definition's options store ``removeOnComplete: {"count": 3}``
    and the default ``removeOnFail: {"count": 5000}`` in the job hash's ``opts``; after 8
    completions Redis holds 3 completed jobs and no hash of the others."""
    definition: JobDefinition[_Work] = JobDefinition(
        name="work",
        queue="kept:work",
        payload=_Work,
        handler=_work,
        remove_on_complete=Retention(count=3),
    )
    refs = [
        await queue_adapter.enqueue(
            "kept:work", "work", {"n": n}, options=job_options(definition, job_id=f"w-{n}")
        )
        for n in range(8)
    ]
    first_opts = json.loads(await raw_redis.hget(f"{redis_prefix}:kept:work:w-0", "opts") or "{}")
    assert first_opts["removeOnComplete"] == {"count": 3}
    assert first_opts["removeOnFail"] == {"count": 5000}

    counted = Retention(count=3, age=3600)
    aged: JobDefinition[_Work] = JobDefinition(
        name="aged", queue="kept:aged", payload=_Work, handler=_work, remove_on_complete=counted
    )
    await queue_adapter.enqueue(
        "kept:aged", "aged", {"n": 0}, options=job_options(aged, job_id="a")
    )
    aged_opts = json.loads(await raw_redis.hget(f"{redis_prefix}:kept:aged:a", "opts") or "{}")
    assert aged_opts["removeOnComplete"] == {"count": 3, "age": 3600}

    async def done(job: Job) -> Any:
        return None

    queue_adapter.consume("kept:work", done)
    outcomes = await queue_adapter.drain("kept:work")  # type: ignore[attr-defined]
    assert len(outcomes) == 8
    completed = await raw_redis.zrange(f"{redis_prefix}:kept:work:completed", 0, -1)
    assert sorted(completed) == ["w-5", "w-6", "w-7"]
    for ref in refs[:5]:
        assert not await raw_redis.exists(f"{redis_prefix}:kept:work:{ref.id}"), ref.id
