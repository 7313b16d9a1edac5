"""Q10: a worker SIGKILLed while it holds 50 jobs loses none of them (at-least-once)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import asyncpg
import pytest

from portside.ports import QueuePort
from portside.testing import wait_for
from tests.reliability.app_registry import JOB_NAMES, QUEUES
from tests.reliability.conftest import Figures
from tests.reliability.producers import enqueue_all
from tests.reliability.records import count_completed, read_runs
from tests.reliability.scale import Scale
from tests.reliability.workers import Servers, WorkerSpawner

pytestmark = pytest.mark.reliability

QUEUE, JOB = QUEUES[0], JOB_NAMES[0]
# The victim's locks expire 3 s after it dies; both workers look for stalled jobs every
# second (BullMQ lets one stalled check per interval run, whoever's turn it is).
VICTIM_TUNING = {"lock_duration": 3.0, "stalled_interval": 1.0}
SURVIVOR_TUNING = {"stalled_interval": 1.0}


async def test_q10_sigkill_of_a_worker_holding_50_jobs_loses_none(
    servers: Servers,
    spawn_workers: Callable[[Servers], WorkerSpawner],
    queue_adapter: QueuePort,
    scale: Scale,
    figures: Figures,
) -> None:
    """2,000 jobs; a worker holds 50 of them and is SIGKILLed while another one works
    through the rest. Every job completes exactly once; the only jobs that ran twice are the
    50 the dead worker held (Q10: a stalled job after a crash is picked up again)."""
    total, in_flight = scale.crash_jobs, scale.crash_in_flight
    ids = [f"crash-{n}" for n in range(total)]
    accepted = {ref.id for ref in await enqueue_all(queue_adapter, QUEUE, JOB, ids)}
    assert accepted == set(ids)
    spawner = spawn_workers(servers)
    db = await asyncpg.connect(servers.postgres_dsn)
    try:
        victim = spawner.start(
            mode="hold",
            concurrency=in_flight,
            record_starts=True,
            tuning=VICTIM_TUNING,
            queues=[QUEUE],
            name="victim",
        )
        await victim.ready()

        async def victim_holds_all() -> bool:
            held = await db.fetchval(
                "SELECT count(*) FROM reliability_runs WHERE event = 'started' AND pid = $1",
                victim.pid,
            )
            return held == in_flight and (await queue_adapter.counts(QUEUE)).active == in_flight

        await wait_for(
            victim_holds_all, timeout=scale.deadline, message=f"the victim to hold {in_flight} jobs"
        )

        survivor = spawner.start(
            mode="run",
            concurrency=20,
            record_starts=True,
            tuning=SURVIVOR_TUNING,
            queues=[QUEUE],
            name="survivor",
        )
        await survivor.ready()
        await wait_for(
            lambda: _at_least(db, total // 4),
            timeout=scale.deadline,
            message=f"the survivor to complete {total // 4} jobs before the kill",
        )
        completed_at_kill = await count_completed(db)
        victim.send(signal.SIGKILL)
        killed_at = time.monotonic()
        assert await victim.exited(timeout=10) == -signal.SIGKILL

        await wait_for(
            lambda: _at_least(db, total),
            timeout=scale.deadline,
            message=f"all {total} jobs to complete after the SIGKILL",
            interval=0.2,
        )
        recovered_in = time.monotonic() - killed_at
        runs = await read_runs(db)
        survivor.send(signal.SIGTERM)
        assert await survivor.exited(timeout=30) == 0, survivor.tail()
    finally:
        await db.close()

    held = runs.started_by.get(victim.pid, set())
    assert len(held) == in_flight, "the victim did not hold exactly its concurrency"
    lost = accepted - runs.done
    assert not lost, f"{len(lost)} accepted jobs never completed: {sorted(lost)[:10]}"
    assert runs.done == accepted, "a job completed that was never enqueued"
    assert runs.completed_by[victim.pid] == 0
    assert runs.duplicate_completions == 0, "a job completed twice"
    ran_twice = {job_id for job_id, starts in runs.started.items() if starts > 1}
    assert ran_twice == held, "jobs other than the killed in-flight ones ran twice"
    assert all(runs.started[job_id] == 2 for job_id in held)
    counts = await queue_adapter.counts(QUEUE)
    assert (counts.completed, counts.failed, counts.active, counts.depth) == (total, 0, 0, 0)
    figures.update(
        jobs_accepted=len(accepted),
        jobs_completed=len(runs.done),
        lost=len(lost),
        in_flight_killed=len(held),
        rerun_after_kill=len(ran_twice),
        duplicate_completions=runs.duplicate_completions,
        completed_before_kill=completed_at_kill,
        recovery_seconds=round(recovered_in, 2),
        faults="1 SIGKILL",
    )


async def _at_least(db: asyncpg.Connection, target: int) -> bool:
    return await count_completed(db) >= target
