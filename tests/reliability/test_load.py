"""Load: jobs over 4 queues and 2 worker processes, events over many streams, reconciled."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import asyncpg
import pytest

from portside.ports import OutboxPort, QueuePort
from portside.testing import wait_for
from tests.reliability.app_registry import JOB_NAMES, QUEUES
from tests.reliability.conftest import Figures
from tests.reliability.outbox_load import EventWriter, Subscriber, read_stored
from tests.reliability.producers import enqueue_all
from tests.reliability.records import count_completed, read_runs
from tests.reliability.scale import Scale
from tests.reliability.workers import Servers, WorkerSpawner

pytestmark = pytest.mark.reliability

WRITERS = 8


async def test_q10_jobs_over_4_queues_with_2_worker_processes_reconcile_exactly(
    servers: Servers,
    spawn_workers: Callable[[Servers], WorkerSpawner],
    queue_adapter: QueuePort,
    scale: Scale,
    figures: Figures,
) -> None:
    """``portside worker --processes 2`` consumes four queues while the test enqueues in bulk:
    every accepted job completes exactly once, in its own queue, and BullMQ's counts and the
    run history agree with what was accepted."""
    queues = QUEUES[: scale.load_queues]
    per_queue = scale.load_jobs // len(queues)
    group = spawn_workers(servers).start("--processes", "2", mode="run", name="group")
    await group.ready(processes=2)
    began = time.monotonic()
    batches = await asyncio.gather(
        *(
            enqueue_all(
                queue_adapter, queue, name, [f"load-{queue[-2:]}-{n}" for n in range(per_queue)]
            )
            for queue, name in zip(queues, JOB_NAMES, strict=False)
        )
    )
    accepted = {
        queue: {ref.id for ref in refs} for queue, refs in zip(queues, batches, strict=True)
    }
    total = sum(len(ids) for ids in accepted.values())
    assert total == per_queue * len(queues)
    enqueued_in = time.monotonic() - began

    db = await asyncpg.connect(servers.postgres_dsn)
    try:

        async def all_completed() -> bool:
            return await count_completed(db) >= total

        await wait_for(
            all_completed,
            timeout=scale.deadline,
            message=f"{total} jobs to complete",
            interval=0.5,
        )
        elapsed = time.monotonic() - began
        runs = await read_runs(db)
        rows = await db.fetch("SELECT status, count(*) AS n FROM job_runs GROUP BY status")
        history = {row["status"]: row["n"] for row in rows}
    finally:
        await db.close()
    group.send(signal.SIGTERM)
    assert await group.exited(timeout=60) == 0, group.tail()

    for queue in queues:
        assert runs.done_in(queue) == accepted[queue], f"{queue} lost or gained jobs"
        counts = await queue_adapter.counts(queue)
        assert (counts.completed, counts.failed, counts.active, counts.depth) == (
            per_queue,
            0,
            0,
            0,
        ), queue
    assert runs.duplicate_completions == 0
    assert history == {"completed": total}, history
    assert len(runs.completed_by) == 2
    assert min(runs.completed_by.values()) > 0
    figures.update(
        jobs_accepted=total,
        queues=len(queues),
        worker_processes=2,
        jobs_completed=len(runs.done),
        lost=total - len(runs.done),
        duplicate_completions=runs.duplicate_completions,
        run_history_rows=sum(history.values()),
        completed_by_process=sorted(runs.completed_by.values()),
        enqueue_seconds=round(enqueued_in, 1),
        seconds_to_complete=round(elapsed, 1),
        jobs_per_second=round(total / elapsed),
    )


async def test_o4_events_over_many_streams_reconcile_exactly(
    outbox_adapter: OutboxPort,
    postgres_dsn: str,
    scale: Scale,
    figures: Figures,
) -> None:
    """Eight writers commit events to many streams while the publisher runs: each committed
    event is delivered exactly once (no fault, so no redelivery), each stream gap-free and in
    seq order, and the table holds exactly what was committed."""
    subscriber = Subscriber("load")
    outbox_adapter.add_handler(subscriber)
    await outbox_adapter.start()
    streams = [f"load-{n}" for n in range(scale.load_streams)]
    share = scale.load_events // WRITERS
    writers = [
        EventWriter(f"w{n}", outbox_adapter, streams, per_tx=10, seed=n, rotate=WRITERS)
        for n in range(WRITERS)
    ]
    began = time.monotonic()
    await asyncio.gather(*(writer.write(share) for writer in writers))
    written_in = time.monotonic() - began
    confirmed = set().union(*(writer.confirmed for writer in writers))
    assert len(confirmed) == share * WRITERS
    assert not any(writer.failures for writer in writers)

    async def delivered_everything() -> bool:
        return len(subscriber.seen) >= len(confirmed) and await outbox_adapter.pending() == 0

    await wait_for(
        delivered_everything,
        timeout=scale.deadline,
        message=f"{len(confirmed)} events delivered and marked published",
        interval=0.2,
    )
    elapsed = time.monotonic() - began
    await outbox_adapter.stop()
    stored = await read_stored(postgres_dsn)

    assert stored.tokens == confirmed
    assert subscriber.seen == stored.ids
    assert not stored.gaps()
    assert not subscriber.order_errors, subscriber.order_errors[:5]
    assert subscriber.redeliveries == 0
    assert len(stored.seqs) == len(streams)
    figures.update(
        events_accepted=len(confirmed),
        streams=len(stored.seqs),
        events_delivered=len(subscriber.seen),
        lost=len(confirmed - stored.tokens),
        redeliveries=subscriber.redeliveries,
        write_seconds=round(written_in, 1),
        seconds_to_deliver=round(elapsed, 1),
        events_per_second=round(len(confirmed) / elapsed),
    )
