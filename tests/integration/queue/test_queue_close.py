"""``BullMQQueue.close()`` returns within a bound even when Redis hangs (Q10).

Each test runs its own Redis server so that it can be frozen with SIGSTOP (it accepts
connections but answers nothing) without disturbing other tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job, JobOptions
from portside.servers import LocalRedis
from portside.testing.waiting import wait_for

pytestmark = pytest.mark.integration

DEADLINE = 30.0
"""Outer deadline: close() is bounded by close_grace + close_timeout, far below this."""


class _Tuning(TypedDict):
    close_grace: float
    close_timeout: float


QUICK: _Tuning = {"close_grace": 0.5, "close_timeout": 1.0}


@pytest.fixture
def frozen_redis() -> Iterator[LocalRedis]:
    """A private Redis server; resumed (SIGCONT) before it is stopped."""
    with LocalRedis() as server:
        try:
            yield server
        finally:
            if server.pid is not None:
                os.kill(server.pid, signal.SIGCONT)


def freeze(server: LocalRedis) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)


def thaw(server: LocalRedis) -> None:
    assert server.pid is not None
    os.kill(server.pid, signal.SIGCONT)


def portside_tasks() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if task.get_name().startswith("portside-") and not task.done()
    ]


async def never(job: Job) -> Any:
    await asyncio.Event().wait()


async def test_q10_close_returns_while_redis_is_stopped(frozen_redis: LocalRedis) -> None:
    """Q10: an adapter with an idle worker, a producer and an event stream closes while its
    Redis answers nothing, and leaves no task of its own running."""
    adapter = BullMQQueue(frozen_redis.url, **QUICK)
    stream = adapter.events("idle")
    await adapter.enqueue("other", "produced", {})
    worker = adapter.consume("idle", never)
    await worker.start()
    await wait_for(
        lambda: worker.status().last_fetch_at is not None,
        timeout=DEADLINE,
        message="the idle worker never fetched",
    )
    freeze(frozen_redis)
    async with asyncio.timeout(DEADLINE):
        await adapter.close()
    assert not worker.status().running
    assert portside_tasks() == []
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_q10_close_with_a_running_handler_and_stopped_redis_returns_and_the_job_is_not_lost(
    frozen_redis: LocalRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """Q10: close() while a handler runs and Redis hangs returns after the grace and the
    bound, warns about what did not finish, and the job is run later by another worker
    (its lock expires and the stalled check requeues it)."""
    adapter = BullMQQueue(frozen_redis.url, lock_duration=2.0, stalled_interval=1.0, **QUICK)
    started = asyncio.Event()

    async def stuck(job: Job) -> Any:
        started.set()
        await asyncio.Event().wait()

    ref = await adapter.enqueue("busy", "long", {}, options=JobOptions(attempts=3))
    worker = adapter.consume("busy", stuck)
    await worker.start()
    async with asyncio.timeout(DEADLINE):
        await started.wait()
    freeze(frozen_redis)
    with caplog.at_level(logging.WARNING, logger="portside.adapters.bullmq"):
        async with asyncio.timeout(DEADLINE):
            await adapter.close()
    assert "worker of 'busy'" in caplog.text
    assert portside_tasks() == []
    thaw(frozen_redis)

    done = asyncio.Event()

    async def finish(job: Job) -> Any:
        done.set()
        return "ran again"

    async with BullMQQueue(
        frozen_redis.url, lock_duration=2.0, stalled_interval=1.0, **QUICK
    ) as second:
        rescuer = second.consume("busy", finish)
        await rescuer.start()
        async with asyncio.timeout(DEADLINE):
            await done.wait()
        await wait_for(
            lambda: _state(second, ref.id, "completed"),
            timeout=DEADLINE,
            message="the job left by the hung close was never completed",
        )


async def _state(adapter: BullMQQueue, job_id: str, state: str) -> bool:
    info = await adapter.get_job("busy", job_id)
    return info is not None and info.state == state


async def test_q10_close_releases_a_running_job_when_redis_answers(
    frozen_redis: LocalRedis,
) -> None:
    """Q10: with Redis up, a handler outliving the grace is cancelled and its job goes
    back to waiting within the bound."""
    adapter = BullMQQueue(frozen_redis.url, **QUICK)
    started = asyncio.Event()

    async def stuck(job: Job) -> Any:
        started.set()
        await asyncio.Event().wait()

    ref = await adapter.enqueue("released", "long", {})
    await adapter.consume("released", stuck).start()
    async with asyncio.timeout(DEADLINE):
        await started.wait()
        await adapter.close()
    async with BullMQQueue(frozen_redis.url) as reader:
        info = await reader.get_job("released", ref.id)
    assert info is not None
    assert info.state == "waiting"
    assert portside_tasks() == []


async def test_q10_closing_twice_is_a_no_op(frozen_redis: LocalRedis) -> None:
    """Q10: a second close(), sequential or concurrent, returns and changes nothing, also
    with Redis stopped."""
    adapter = BullMQQueue(frozen_redis.url, **QUICK)
    await adapter.enqueue("twice", "job", {})
    await adapter.consume("twice", never).start()
    freeze(frozen_redis)
    async with asyncio.timeout(DEADLINE):
        await asyncio.gather(adapter.close(), adapter.close())
        await adapter.close()
    assert portside_tasks() == []


async def test_q10_cancelling_close_leaves_no_task_running(frozen_redis: LocalRedis) -> None:
    """Q10: when the caller gives up on close() (its own timeout cancels it) while Redis
    hangs and a handler runs, the adapter's sockets are aborted and its tasks end."""
    adapter = BullMQQueue(frozen_redis.url, close_grace=60.0, close_timeout=60.0)
    started = asyncio.Event()

    async def stuck(job: Job) -> Any:
        started.set()
        await asyncio.Event().wait()

    await adapter.enqueue("cancelled", "long", {})
    worker = adapter.consume("cancelled", stuck)
    await worker.start()
    async with asyncio.timeout(DEADLINE):
        await started.wait()
    freeze(frozen_redis)
    closing = asyncio.create_task(adapter.close())
    await wait_for(
        lambda: not worker.status().running, timeout=DEADLINE, message="close() never began"
    )
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await wait_for(
        lambda: portside_tasks() == [],
        timeout=DEADLINE,
        message="the adapter's tasks to end after close() was cancelled",
    )
