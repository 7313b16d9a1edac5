"""Q10: SIGTERM under load lets in-flight jobs finish, leaves the rest queued, exits 0 in grace."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import cast

import asyncpg
import pytest
from redis.asyncio import Redis

from portside.ports import QueuePort
from portside.testing import wait_for
from tests.reliability.app_registry import JOB_NAMES, QUEUES
from tests.reliability.conftest import Figures
from tests.reliability.producers import enqueue_all
from tests.reliability.records import read_runs
from tests.reliability.scale import Scale
from tests.reliability.workers import Servers, WorkerProcess, WorkerSpawner

pytestmark = pytest.mark.reliability

QUEUE, JOB = QUEUES[0], JOB_NAMES[0]
CONCURRENCY = 8


class Gate:
    """The test's side of the workers' gate: see who started, let jobs finish."""

    def __init__(self, client: Redis, key: str) -> None:
        self.client = client
        self.key = key
        self.released: list[str] = []

    async def waiting(self) -> int:
        """Jobs that started and wait for their release."""
        return int(await self.client.llen(f"{self.key}:started"))

    async def release_started(self, limit: int) -> int:
        """Release up to ``limit`` of the jobs waiting at the gate; how many were released."""
        started = await self.client.lpop(f"{self.key}:started", limit)
        ids = [bytes(raw).decode() for raw in cast(list[bytes], started or [])]
        if ids:
            async with self.client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.rpush(f"{self.key}:release:{job_id}", "go")
                await pipe.execute()
        self.released += ids
        return len(ids)


@pytest.fixture
async def gate(redis_url: str, redis_prefix: str) -> AsyncIterator[Gate]:
    client = Redis.from_url(redis_url)
    try:
        yield Gate(client, f"{redis_prefix}:gate")
    finally:
        await client.aclose()


async def _run_until_released(gate: Gate, count: int, deadline: float) -> None:
    """Let exactly ``count`` jobs through the gate, as fast as the worker starts them."""

    async def released_enough() -> bool:
        await gate.release_started(count - len(gate.released))
        return len(gate.released) >= count

    await wait_for(released_enough, timeout=deadline, message=f"{count} jobs through the gate")


async def _load_then_hold(
    servers: Servers,
    spawner: WorkerSpawner,
    queue: QueuePort,
    gate: Gate,
    scale: Scale,
    grace: float,
) -> WorkerProcess:
    """Enqueue, start a gated worker, let ``sigterm_released`` jobs through, then wait
    until the worker holds ``CONCURRENCY`` jobs at the gate."""
    ids = [f"stop-{n}" for n in range(scale.sigterm_jobs)]
    assert len(await enqueue_all(queue, QUEUE, JOB, ids)) == len(ids)
    worker = spawner.start(
        mode="gate",
        concurrency=CONCURRENCY,
        gate=(servers.redis_url, gate.key),
        queues=[QUEUE],
        grace=grace,
    )
    await worker.ready()
    await _run_until_released(gate, scale.sigterm_released, scale.deadline)

    async def slots_full() -> bool:
        return (await gate.waiting()) == CONCURRENCY

    await wait_for(slots_full, timeout=scale.deadline, message=f"{CONCURRENCY} jobs in flight")
    assert (await queue.counts(QUEUE)).active == CONCURRENCY
    return worker


async def test_q10_sigterm_under_load_finishes_in_flight_jobs_and_exits_0(
    servers: Servers,
    spawn_workers: Callable[[Servers], WorkerSpawner],
    queue_adapter: QueuePort,
    gate: Gate,
    scale: Scale,
    figures: Figures,
) -> None:
    """The in-flight jobs finish after SIGTERM, no new job starts, the rest stay waiting,
    and the worker exits 0 well within its grace period."""
    grace = 30.0
    released = scale.sigterm_released
    worker = await _load_then_hold(
        servers, spawn_workers(servers), queue_adapter, gate, scale, grace
    )

    worker.send(signal.SIGTERM)
    signalled = time.monotonic()
    await wait_for(
        lambda: worker.count("worker.stopping") == 1,
        timeout=10,
        message="the worker to log worker.stopping after SIGTERM",
    )
    assert worker.returncode is None, "the worker quit with jobs in flight"
    assert await gate.release_started(CONCURRENCY) == CONCURRENCY
    code = await worker.exited(timeout=grace)
    stopped_in = time.monotonic() - signalled

    assert code == 0, worker.tail()
    assert stopped_in < grace
    assert await gate.waiting() == 0, "a job started after SIGTERM"
    finished = released + CONCURRENCY
    db = await asyncpg.connect(servers.postgres_dsn)
    try:
        runs = await read_runs(db)
    finally:
        await db.close()
    assert runs.done == set(gate.released)
    assert len(runs.done) == finished
    assert runs.duplicate_completions == 0
    counts = await queue_adapter.counts(QUEUE)
    remaining = scale.sigterm_jobs - finished
    assert (counts.completed, counts.active, counts.waiting, counts.failed) == (
        finished,
        0,
        remaining,
        0,
    )
    figures.update(
        jobs_accepted=scale.sigterm_jobs,
        completed_before_sigterm=released,
        in_flight_at_sigterm=CONCURRENCY,
        in_flight_finished=CONCURRENCY,
        left_waiting=remaining,
        lost=scale.sigterm_jobs - finished - counts.waiting,
        exit_code=code,
        stop_seconds=round(stopped_in, 2),
        grace_seconds=grace,
        faults="1 SIGTERM",
    )


async def test_q10_jobs_outliving_the_grace_go_back_to_waiting_and_run_again(
    servers: Servers,
    spawn_workers: Callable[[Servers], WorkerSpawner],
    queue_adapter: QueuePort,
    gate: Gate,
    scale: Scale,
    figures: Figures,
) -> None:
    """In-flight jobs that do not finish within the grace are released to waiting (no
    attempt used), the worker exits 0 at the bound, and a new worker completes every job."""
    grace = 2.0
    spawner = spawn_workers(servers)
    worker = await _load_then_hold(servers, spawner, queue_adapter, gate, scale, grace)
    held = await gate.client.lrange(f"{gate.key}:started", 0, -1)
    held_ids = sorted(bytes(raw).decode() for raw in cast(list[bytes], held))

    worker.send(signal.SIGTERM)
    signalled = time.monotonic()
    code = await worker.exited(timeout=grace + 15)
    stopped_in = time.monotonic() - signalled

    assert code == 0, worker.tail()
    assert grace <= stopped_in < grace + 10, stopped_in
    counts = await queue_adapter.counts(QUEUE)
    assert (counts.active, counts.waiting) == (0, scale.sigterm_jobs - scale.sigterm_released)
    for job_id in held_ids:
        info = await queue_adapter.get_job(QUEUE, job_id)
        assert info is not None, (job_id, info)
        assert info.state == "waiting", (job_id, info)
        assert info.attempts_made == 0, f"releasing {job_id} at shutdown used an attempt"

    successor = spawner.start(mode="run", queues=[QUEUE], name="successor")
    db = await asyncpg.connect(servers.postgres_dsn)
    try:

        async def all_done() -> bool:
            done = await db.fetchval(
                "SELECT count(DISTINCT job_id) FROM reliability_runs WHERE event = 'completed'"
            )
            return bool(done == scale.sigterm_jobs)

        await wait_for(all_done, timeout=scale.deadline, message="the successor to finish")
        runs = await read_runs(db)
    finally:
        await db.close()
    successor.send(signal.SIGTERM)
    assert await successor.exited(timeout=30) == 0, successor.tail()
    assert len(runs.done) == scale.sigterm_jobs
    assert runs.duplicate_completions == 0
    assert runs.completed_by[worker.pid] == scale.sigterm_released
    final = await queue_adapter.counts(QUEUE)
    assert (final.completed, final.failed, final.depth) == (scale.sigterm_jobs, 0, 0)
    figures.update(
        jobs_accepted=scale.sigterm_jobs,
        jobs_completed=len(runs.done),
        released_at_grace=len(held_ids),
        lost=scale.sigterm_jobs - len(runs.done),
        duplicate_completions=runs.duplicate_completions,
        exit_code=code,
        stop_seconds=round(stopped_in, 2),
        grace_seconds=grace,
        faults="1 SIGTERM past the grace",
    )
