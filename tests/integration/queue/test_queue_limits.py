"""Concurrency and rate limits on real Redis, across workers and processes (Q6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job, NewJob, QueuePort, RateLimit
from portside.testing.waiting import wait_for

pytestmark = pytest.mark.integration


async def test_q6_started_worker_with_500_jobs_never_runs_more_than_5(
    queue_adapter: QueuePort,
) -> None:
    """Q6: a started worker at concurrency 5, flooded with 500 jobs, peaks at exactly 5.

    The first five attempts hold until all five run at once, so a sixth would show up as a
    peak of 6 while they wait; the rest run freely with yield points in between."""
    running = 0
    peak = 0
    finished = 0
    all_done = asyncio.Event()
    five_running = asyncio.Event()

    async def handler(job: Job) -> Any:
        nonlocal running, peak, finished
        running += 1
        peak = max(peak, running)
        if running == 5:
            five_running.set()
        try:
            if not five_running.is_set():
                async with asyncio.timeout(10):
                    await five_running.wait()
            await asyncio.sleep(0)  # a yield point where a sixth attempt could start
            await asyncio.sleep(0)
            return None
        finally:
            running -= 1
            finished += 1
            if finished == 500:
                all_done.set()

    await queue_adapter.enqueue_bulk(
        "flood-live", [NewJob(name="work", data={"i": i}) for i in range(500)]
    )
    worker = queue_adapter.consume("flood-live", handler, concurrency=5)
    await worker.start()
    try:
        async with asyncio.timeout(60):
            await all_done.wait()
    finally:
        await worker.close(grace=5)
    assert peak == 5, f"peak concurrency was {peak}"
    assert (await queue_adapter.counts("flood-live")).completed == 500


async def test_q6_rate_limit_is_the_shared_bullmq_limiter(
    make_adapter: Callable[..., BullMQQueue], raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q6: two adapters (two processes' worth) limited to 2 per minute start 2 jobs in total;
    the limiter key holds the count and the window, the rest stay waiting."""
    first, second = make_adapter(), make_adapter()
    ran: list[str] = []

    async def handler(job: Job) -> Any:
        ran.append(job.id)
        return None

    await first.enqueue_bulk("limited", [NewJob(name="call", data={"i": i}) for i in range(6)])
    limit = RateLimit(max=2, per=60)
    first.consume("limited", handler, concurrency=3, rate_limit=limit)
    second.consume("limited", handler, concurrency=3, rate_limit=limit)
    assert len(await first.drain("limited")) + len(await second.drain("limited")) == 2
    limiter = f"{redis_prefix}:limited:limiter"
    assert await raw_redis.get(limiter) == "2"
    ttl = await raw_redis.pttl(limiter)
    assert 0 < ttl <= 60_000
    counts = await first.counts("limited")
    assert (counts.waiting, counts.completed) == (4, 2)
    await first.advance(60)  # the window passes for both adapters: they share the key
    assert not await raw_redis.exists(limiter)
    assert len(await second.drain("limited")) == 2
    assert await raw_redis.get(limiter) == "2"
    assert len(ran) == 4


async def test_q6_started_workers_respect_the_limit_and_resume_after_the_window(
    make_adapter: Callable[..., BullMQQueue], raw_redis: redis.Redis, redis_prefix: str
) -> None:
    """Q6: a running worker stops at the limit (it waits, it does not spin) and goes on by
    itself once the window has passed."""
    adapter = make_adapter()
    done: list[str] = []

    async def handler(job: Job) -> Any:
        done.append(job.id)
        return None

    await adapter.enqueue_bulk("paced", [NewJob(name="call", data={"i": i}) for i in range(3)])
    worker = adapter.consume("paced", handler, concurrency=2, rate_limit=RateLimit(max=2, per=1))
    await worker.start()
    try:
        await wait_for(lambda: len(done) == 2, message="the first two jobs of the window")
        assert await raw_redis.get(f"{redis_prefix}:paced:limiter") == "2"
        await wait_for(lambda: len(done) == 3, message="the third job after the 1 s window")
    finally:
        await worker.close(grace=5)
    assert (await adapter.counts("paced")).completed == 3


async def test_q6_advance_ends_the_window_for_a_started_worker(
    make_adapter: Callable[..., BullMQQueue], events_until: Callable[..., Any]
) -> None:
    """Q6: ``advance`` past the window lets a started, rate-limited worker go on at once."""
    adapter = make_adapter()
    stream = adapter.events("hourly")

    async def handler(job: Job) -> Any:
        return job.name

    first = await adapter.enqueue("hourly", "first", {})
    second = await adapter.enqueue("hourly", "second", {})
    worker = adapter.consume("hourly", handler, rate_limit=RateLimit(max=1, per=3600))
    await worker.start()
    try:
        await events_until(stream, lambda e: e.kind == "completed" and e.job_id == first.id, "1st")
        info = await adapter.get_job("hourly", second.id)
        assert info is not None
        assert info.state == "waiting"
        await adapter.advance(3600)
        await events_until(stream, lambda e: e.kind == "completed" and e.job_id == second.id, "2nd")
    finally:
        await worker.close(grace=5)
        await stream.aclose()
