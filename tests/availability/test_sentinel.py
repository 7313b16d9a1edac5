"""S2: the master is found through Sentinel and found again after a failover under load."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from portside.adapters.bullmq import BullMQQueue
from portside.ports import BackendUnavailableError, ConfigurationError, Job, JobOptions
from portside.testing import wait_for
from tests.availability.conftest import SentinelSet

QUEUE = "load"
JOBS = 1500
KILL_AT = 500
RATE = 200.0
WORK = 0.05
TUNING = {
    "lock_duration": 5.0,
    "stalled_interval": 1.0,
    "max_backoff": 0.5,
    "retries": 3,
    "close_grace": 1.0,
}
"""Short locks so a job whose finish was lost with the old master is requeued soon; quick
reconnects so the time to resume measures Sentinel, not our backoff."""

log = logging.getLogger(__name__)


class Producer:
    """Enqueues jobs with fixed ids, retrying each one until Redis accepts it."""

    def __init__(self, adapter: BullMQQueue) -> None:
        self.adapter = adapter
        self.accepted: dict[str, float] = {}
        self.refused = 0

    async def run(self, total: int, per_second: float) -> None:
        began = time.monotonic()
        for n in range(total):
            job_id = f"job-{n}"
            while True:
                try:
                    await self.adapter.enqueue(
                        QUEUE, "work", {"n": n}, options=JobOptions(job_id=job_id)
                    )
                    break
                except BackendUnavailableError:
                    self.refused += 1
            self.accepted[job_id] = time.monotonic()
            ahead = began + (n + 1) / per_second - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing the load, not waiting for anything


async def test_s2_sigkill_of_the_master_under_load_loses_no_job(
    sentinel_set: SentinelSet, record_property: object
) -> None:
    """S2: a producer (200 jobs/s) and a worker (20 at once, 50 ms each) reach the master
    through three Sentinels; the master is SIGKILLed after 500 of 1,500 jobs. Sentinel
    promotes the replica, both find it on their own, every accepted job completes (lost = 0)
    and the worker resumes within 20 s."""
    adapter = BullMQQueue(sentinel_set.url, prefix="s2", **TUNING)
    done: dict[str, float] = {}
    running: set[str] = set()

    async def handler(job: Job) -> None:
        running.add(job.id)
        try:
            await asyncio.sleep(WORK)  # the job's work
        finally:
            running.discard(job.id)
        done.setdefault(job.id, time.monotonic())

    worker = adapter.consume(QUEUE, handler, concurrency=20)
    producer = Producer(adapter)
    try:
        await worker.start()
        production = asyncio.create_task(producer.run(JOBS, per_second=RATE))
        await wait_for(
            lambda: len(producer.accepted) >= KILL_AT,
            timeout=60,
            message=f"{KILL_AT} jobs accepted",
        )
        in_flight = len(running)
        waiting = len(producer.accepted) - len(done) - in_flight
        killed_at = time.monotonic()
        sentinel_set.master.kill()

        def new_jobs_handled() -> list[float]:
            return [
                at for job_id, at in done.items() if producer.accepted.get(job_id, 0.0) > killed_at
            ]

        await wait_for(
            lambda: bool(new_jobs_handled()),
            timeout=30,
            message="the worker to run a job enqueued after the kill",
        )
        resumed = min(new_jobs_handled()) - killed_at
        await asyncio.wait_for(production, timeout=60)
        await wait_for(
            lambda: producer.accepted.keys() <= done.keys(),
            timeout=60,
            message="every accepted job to complete after the failover",
        )
        await wait_for(
            lambda: _completed(adapter, JOBS),
            timeout=30,
            message=f"Redis to count {JOBS} completed jobs",
        )
        lost = producer.accepted.keys() - done.keys()
        figures = {
            "accepted": len(producer.accepted),
            "completed": len(done),
            "running_at_kill": in_flight,
            "waiting_at_kill": waiting,
            "lost": len(lost),
            "seconds_to_resume": round(resumed, 2),
            "enqueues_refused_then_retried": producer.refused,
        }
        for key, value in figures.items():
            record_property(key, value)  # type: ignore[operator]
        print(f"S2 failover figures: {figures}")
        assert not lost
        assert resumed < 20
    finally:
        await worker.close()
        await adapter.close()


async def _completed(adapter: BullMQQueue, expected: int) -> bool:
    try:
        return (await adapter.counts(QUEUE)).completed == expected
    except BackendUnavailableError:
        return False


async def test_s2_a_sentinel_url_without_a_service_name_is_refused() -> None:
    """S2: a Sentinel URL missing its service name fails at construction, naming the format."""
    with pytest.raises(ConfigurationError, match="service name"):
        BullMQQueue("redis+sentinel://127.0.0.1:26379", prefix="s2")
