"""Helper scenarios run on the fakes (unit) and on the real adapters (integration): same
outcomes on both (H3)."""

from __future__ import annotations

import asyncio

from portside import Infra
from portside.ports import Job, JobOptions, OutboxEvent
from portside.testing import capture_events, drain_outbox_once, drain_queue, paused


async def double(job: Job) -> int:
    return int(job.data["n"]) * 2


async def drain_returns_every_outcome_in_order(infra: Infra) -> None:
    queue = "h3-drain"
    infra.queue.consume(queue, double)
    for n in range(3):
        await infra.queue.enqueue(queue, "double", {"n": n}, options=JobOptions(job_id=f"j{n}"))
    outcomes = await drain_queue(queue)
    assert [(o.job_id, o.status, o.result) for o in outcomes] == [
        ("j0", "completed", 0),
        ("j1", "completed", 2),
        ("j2", "completed", 4),
    ]
    assert await drain_queue(queue) == []
    assert (await infra.queue.counts(queue)).completed == 3


async def paused_queue_holds_jobs_until_the_block_ends(infra: Infra) -> None:
    queue = "h3-paused"
    infra.queue.consume(queue, double)
    async with paused(queue):
        await infra.queue.enqueue(queue, "double", {"n": 5}, options=JobOptions(job_id="p1"))
        assert await infra.queue.is_paused(queue)
        assert await drain_queue(queue) == []
        assert (await infra.queue.counts(queue)).depth == 1
    assert not await infra.queue.is_paused(queue)
    assert [(o.job_id, o.result) for o in await drain_queue(queue)] == [("p1", 10)]


async def paused_keeps_a_queue_paused_that_was_paused(infra: Infra) -> None:
    queue = "h3-already-paused"
    await infra.queue.pause(queue)
    async with paused(queue):
        pass
    assert await infra.queue.is_paused(queue)


async def drain_outbox_once_publishes_what_was_committed(infra: Infra) -> None:
    seen: list[tuple[str, int]] = []

    async def handler(event: OutboxEvent) -> None:
        seen.append((event.stream, event.seq))

    infra.outbox.add_handler(handler)
    async with infra.outbox.transaction() as tx:
        await infra.outbox.append(tx, "run-a", "step", {"n": 1})
        await infra.outbox.append(tx, "run-a", "step", {"n": 2})
        await infra.outbox.append(tx, "run-b", "step", {"n": 1})
    assert await drain_outbox_once("run-a") == 2
    assert seen == [("run-a", 1), ("run-a", 2)]
    assert await drain_outbox_once() == 1
    assert await drain_outbox_once() == 0
    assert seen[-1] == ("run-b", 1)


async def paused_outbox_holds_the_publisher(infra: Infra) -> None:
    delivered = asyncio.Event()
    seen: list[int] = []

    async def handler(event: OutboxEvent) -> None:
        seen.append(event.seq)
        delivered.set()

    infra.outbox.add_handler(handler)
    await infra.outbox.start()
    try:
        async with paused(infra.outbox):
            async with infra.outbox.transaction() as tx:
                await infra.outbox.append(tx, "run-held", "step", {"n": 1})
            assert await infra.outbox.pending() == 1
            assert seen == []
        await asyncio.wait_for(delivered.wait(), timeout=10)
        assert seen == [1]
    finally:
        await infra.outbox.stop()


async def paused_outbox_that_was_stopped_stays_stopped(infra: Infra) -> None:
    seen: list[int] = []

    async def handler(event: OutboxEvent) -> None:
        seen.append(event.seq)

    infra.outbox.add_handler(handler)
    async with paused(infra.outbox):
        pass
    async with infra.outbox.transaction() as tx:
        await infra.outbox.append(tx, "run-idle", "step", {"n": 1})
    # No publisher runs, so only an explicit drain delivers.
    assert await infra.outbox.pending() == 1
    assert await drain_outbox_once("run-idle") == 1
    assert seen == [1]


async def captured_events_follow_a_job(infra: Infra) -> None:
    queue = "h3-events"
    infra.queue.consume(queue, double)
    async with capture_events(queue) as events:
        await infra.queue.enqueue(queue, "double", {"n": 1}, options=JobOptions(job_id="e1"))
        await drain_queue(queue)
        (completed,) = await events.wait_for("completed", job_id="e1", timeout=10)
        assert completed.result == 2
        assert events.kinds("e1")[-1] == "completed"
        assert "active" in events.kinds("e1")


SCENARIOS = [
    drain_returns_every_outcome_in_order,
    paused_queue_holds_jobs_until_the_block_ends,
    paused_keeps_a_queue_paused_that_was_paused,
    drain_outbox_once_publishes_what_was_committed,
    paused_outbox_holds_the_publisher,
    paused_outbox_that_was_stopped_stays_stopped,
    captured_events_follow_a_job,
]
