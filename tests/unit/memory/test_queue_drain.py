"""InMemoryQueue.drain(): inline runs, concurrency, and cooperation with started workers."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue
from portside.ports import Backoff, ConfigurationError, Job, JobOptions, NewJob, TransientError
from portside.testing.contracts.support import ConcurrencyProbe


async def _ok(job: Job) -> Any:
    return job.data.get("i")


async def test_q6_500_jobs_at_concurrency_5_never_run_more_than_5() -> None:
    """Q6: the flood of 500 jobs runs 5 at a time, all 500 complete, in enqueue order."""
    queue = InMemoryQueue()
    probe = ConcurrencyProbe(limit=5)
    await queue.enqueue_bulk("flood", [NewJob(name="w", data={"i": i}) for i in range(500)])
    queue.consume("flood", probe, concurrency=5)
    outcomes = await queue.drain("flood")
    assert (probe.peak, probe.stuck, probe.finished) == (5, False, 500)
    assert len(outcomes) == 500
    assert sorted(int(o.job_id) for o in outcomes[:5]) == [1, 2, 3, 4, 5]


async def test_q6_drain_and_a_started_worker_share_one_limit_and_never_double_run() -> None:
    """Q6: drain() running next to a started worker respects the worker's concurrency and
    runs each job once; drain returns the outcomes of attempts the worker ran too."""
    queue = InMemoryQueue()
    probe = ConcurrencyProbe(limit=5)
    runs: Counter[str] = Counter()

    async def handler(job: Job) -> Any:
        runs[job.id] += 1
        return await probe(job)

    worker = queue.consume("shared", handler, concurrency=5)
    await worker.start()
    try:
        await queue.enqueue_bulk("shared", [NewJob(name="w", data={}) for _ in range(500)])
        outcomes = await queue.drain("shared")
    finally:
        await worker.close(grace=5)
    assert probe.peak == 5
    assert set(runs.values()) == {1}
    assert len(runs) == 500
    assert sorted(int(o.job_id) for o in outcomes) == list(range(1, 501))


async def test_drain_returns_outcomes_in_completion_order() -> None:
    queue = InMemoryQueue()
    release = asyncio.Event()

    async def handler(job: Job) -> Any:
        if job.name == "slow":
            await release.wait()
        else:
            release.set()
        return job.name

    await queue.enqueue("order", "slow", {})
    await queue.enqueue("order", "fast", {})
    queue.consume("order", handler, concurrency=2)
    outcomes = await queue.drain("order")
    assert [o.result for o in outcomes] == ["fast", "slow"]


async def test_drain_without_a_queue_runs_every_queue() -> None:
    queue = InMemoryQueue()
    for name in ("a", "b:c"):
        await queue.enqueue(name, "x", {"i": 1})
        queue.consume(name, _ok)
    outcomes = await queue.drain()
    assert sorted(o.queue for o in outcomes) == ["a", "b:c"]
    assert await queue.drain() == []


async def test_drain_of_a_queue_without_worker_says_how_to_fix_it() -> None:
    queue = InMemoryQueue()
    assert await queue.drain("empty") == []
    await queue.enqueue("orphans", "x", {})
    with pytest.raises(ConfigurationError, match=r"call queue.consume\('orphans', handler\)"):
        await queue.drain("orphans")
    await queue.pause("orphans")
    assert await queue.drain("orphans") == []


async def test_immediate_retries_run_in_the_same_drain_but_backoff_waits() -> None:
    """Q3: without backoff the retry goes to the back of the queue and runs in this drain."""
    queue = InMemoryQueue()
    await queue.enqueue("r", "now", {}, options=JobOptions(attempts=2))
    await queue.enqueue("r", "later", {}, options=JobOptions(attempts=2, backoff=Backoff.fixed(3)))

    async def handler(job: Job) -> Any:
        raise TransientError("no")

    queue.consume("r", handler)
    outcomes = await queue.drain("r")
    assert [(o.name, o.status) for o in outcomes] == [
        ("now", "retrying"),
        ("later", "retrying"),
        ("now", "failed"),
    ]


async def test_cancelling_drain_puts_the_running_job_back() -> None:
    """A drain cancelled mid-attempt leaves the job waiting (a stall), not lost."""
    queue = InMemoryQueue()
    started = asyncio.Event()

    async def hang(job: Job) -> Any:
        started.set()
        await asyncio.Event().wait()

    ref = await queue.enqueue("c", "x", {})
    queue.consume("c", hang)
    drained = asyncio.create_task(queue.drain("c"))
    await asyncio.wait_for(started.wait(), 5)
    drained.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drained
    info = await queue.get_job("c", ref.id)
    assert info is not None
    assert (info.state, info.attempts_made) == ("waiting", 0)
    assert [e.kind for e in queue.events_log] == ["enqueued", "active", "stalled"]


async def test_a_cancelled_drain_leaves_its_outcomes_to_a_drain_running_beside_it() -> None:
    """Two drains of one queue collect the same outcomes; cancelling one keeps the other's."""
    queue = InMemoryQueue()
    started, release = asyncio.Event(), asyncio.Event()

    async def held(job: Job) -> str:
        started.set()
        await release.wait()
        return "done"

    queue.consume("held", held)
    await queue.enqueue("held", "n", {})
    first = asyncio.create_task(queue.drain("held"))
    second = asyncio.create_task(queue.drain("held"))
    await started.wait()
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    release.set()
    assert [(o.status, o.result) for o in await first] == [("completed", "done")]
