"""Q10: Redis connections killed and Redis restarted under load: no accepted job is lost."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from portside.adapters.bullmq import BullMQQueue
from portside.servers import LocalRedis
from portside.testing import WaitTimeout, wait_for
from tests.reliability.app_registry import JOB_NAMES, QUEUES
from tests.reliability.conftest import Figures
from tests.reliability.faults import RedisFaults
from tests.reliability.producers import ResilientProducer
from tests.reliability.records import count_completed, create_runs_table, read_runs
from tests.reliability.scale import Scale
from tests.reliability.workers import Servers, WorkerSpawner

pytestmark = pytest.mark.reliability

QUEUE, JOB = QUEUES[0], JOB_NAMES[0]
PREFIX = "reliability"
PRODUCERS = 4
BULK = 10
# A fetch whose reply is lost with its connection leaves that job locked in `active`; the
# worker releases it after reconnecting. Short locks bound the wait for whatever that misses
# (the stalled check requeues it: 60 s with BullMQ's defaults, about 12 s with these). Every
# worker of a queue must use the same interval.
WORKER_TUNING = {"lock_duration": 10.0, "stalled_interval": 2.0}


@pytest.fixture
async def producer_queue(private_redis: LocalRedis) -> AsyncIterator[BullMQQueue]:
    queue = BullMQQueue(private_redis.url, prefix=PREFIX)
    try:
        yield queue
    finally:
        await queue.close()


async def _inject(
    faults: RedisFaults, progress: Callable[[], int], refused: Callable[[], int], total: int
) -> None:
    """Faults at set points of the production, while the workers consume."""

    async def producers_refused() -> None:
        before = refused()
        await wait_for(
            lambda: refused() > before,
            timeout=60,
            message="a producer's enqueue to be refused while Redis is down",
        )

    async def crash() -> None:
        await faults.crash_and_restart(while_down=producers_refused)

    plan: list[tuple[float, Callable[[], Awaitable[object]]]] = [
        (0.10, faults.kill_clients),
        (0.25, faults.kill_clients),
        (0.40, crash),
        (0.55, faults.kill_clients),
        (0.70, faults.restart),
        (0.85, faults.kill_clients),
    ]
    for fraction, inject in plan:
        target = int(total * fraction)
        await wait_for(
            lambda target=target: progress() >= target,  # type: ignore[misc]
            timeout=120,
            message=f"{target} accepted jobs before the next fault",
        )
        await inject()


async def test_q10_redis_faults_under_load_lose_no_accepted_job(
    private_redis: LocalRedis,
    postgres_dsn: str,
    spawn_workers: Callable[[Servers], WorkerSpawner],
    producer_queue: BullMQQueue,
    scale: Scale,
    figures: Figures,
) -> None:
    """Two worker processes consume while four producers enqueue (single and bulk); Redis
    connections are killed four times, Redis is SIGKILLed and restarted once and restarted
    gracefully once (AOF, fsync always). Producers retry on BackendUnavailableError like a
    real caller. Every accepted job completes; BullMQ ends with all of them completed."""
    total = scale.redis_fault_jobs
    await create_runs_table(postgres_dsn)
    servers = Servers(private_redis.url, PREFIX, postgres_dsn)
    spawner = spawn_workers(servers)
    workers = [
        spawner.start(mode="run", queues=[QUEUE], tuning=WORKER_TUNING, name=f"worker-{n}")
        for n in range(2)
    ]
    for worker in workers:
        await worker.ready()

    faults = RedisFaults(private_redis)
    producers = [
        ResilientProducer(producer_queue, QUEUE, JOB, faults.answers, deadline=scale.deadline)
        for _ in range(PRODUCERS)
    ]
    shares = [[f"redis-{n}" for n in range(i, total, PRODUCERS)] for i in range(PRODUCERS)]
    began = time.monotonic()
    production = [
        asyncio.create_task(producer.produce(share, bulk=BULK if index % 2 else 0))
        for index, (producer, share) in enumerate(zip(producers, shares, strict=True))
    ]
    await _inject(
        faults,
        lambda: sum(len(p.accepted) for p in producers),
        lambda: sum(p.unavailable for p in producers),
        total,
    )
    await asyncio.gather(*production)
    accepted = set().union(*(producer.accepted for producer in producers))
    assert accepted == {job_id for share in shares for job_id in share}

    settled = (total, 0, 0, 0)

    async def bullmq_settled() -> bool:
        counts = await producer_queue.counts(QUEUE)
        return (counts.completed, counts.failed, counts.active, counts.depth) == settled

    db = await asyncpg.connect(postgres_dsn)
    try:

        async def all_completed() -> bool:
            return await count_completed(db) >= total

        await wait_for(
            all_completed,
            timeout=scale.deadline,
            message=f"all {total} accepted jobs to complete after the faults",
            interval=0.2,
        )
        elapsed = time.monotonic() - began
        # A handler records its run before its worker reports the job to BullMQ. When that
        # report finds the job's lock expired (Redis was unreachable for longer than
        # lock_duration), BullMQ keeps the job in `active` until the stalled check requeues
        # it and a worker runs it again (at least once). Stopping the workers now would
        # strand it there, so wait for BullMQ's ledger too; the assertion on the counts below
        # says what it shows if it never settles.
        with contextlib.suppress(WaitTimeout):
            await wait_for(
                bullmq_settled,
                timeout=scale.deadline,
                message=f"BullMQ to count {settled} (completed, failed, active, depth)",
                interval=0.2,
            )
        runs = await read_runs(db)
    finally:
        await db.close()
    released = [line for worker in workers for line in worker.mentioning("reply was lost")]
    requeued = [line for worker in workers for line in worker.mentioning("lock expired")]
    for worker in workers:
        assert worker.returncode is None, f"{worker.name} died:\n{worker.tail()}"
        worker.send(signal.SIGTERM)
    for worker in workers:
        assert await worker.exited(timeout=30) == 0, worker.tail()

    lost = accepted - runs.done
    assert not lost, f"{len(lost)} accepted jobs never completed: {sorted(lost)[:10]}"
    assert runs.done == accepted
    counts = await producer_queue.counts(QUEUE)
    assert (counts.completed, counts.failed, counts.active, counts.depth) == settled
    assert sum(faults.injected.values()) == 6
    assert sum(p.unavailable for p in producers) >= 1
    figures.update(
        jobs_accepted=len(accepted),
        jobs_completed=len(runs.done),
        lost=len(lost),
        duplicate_completions=runs.duplicate_completions,
        enqueues_refused_while_down=sum(p.unavailable for p in producers),
        faults=dict(faults.injected),
        connections_killed=faults.connections_killed,
        orphaned_fetches_released=len(released),
        stalled_jobs_requeued=len(requeued),
        completed_by_worker=sorted(runs.completed_by.values()),
        seconds_to_drain=round(elapsed, 1),
    )
