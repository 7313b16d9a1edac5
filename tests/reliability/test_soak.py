"""Q15: a soak of ``portside worker`` with default settings: Redis and Postgres end bounded by
the retention settings, not by the number of jobs (200,000 at full scale)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from portside.adapters.postgres.history import PostgresHistory
from portside.app import DEFAULT_KEEP_COMPLETED
from portside.ports import NewJob, QueuePort
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker
from tests.reliability.conftest import Figures
from tests.reliability.scale import Scale

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "soak:noop"
APP = textwrap.dedent(
    '''
    """A no-op job with the platform's default settings (retention included)."""
    from pydantic import BaseModel

    from portside.app import JobDefinition, Registry


    class Tick(BaseModel):
        n: int


    async def tick(payload: Tick, ctx) -> int:
        return payload.n


    registry = Registry(
        [JobDefinition(name="tick", queue="soak:noop", payload=Tick, handler=tick, concurrency=50)]
    )
    '''
)
BULK = 1_000
QUEUE_KEYS = 20
"""At most this many keys of a queue that are not job hashes."""
JOB_BYTES_BOUND = 4_096
"""Generous Redis bytes per kept job (hash, ids in sets, events), for the memory bound."""
EVENTS_BYTES_BOUND = 10_000 * 512
"""BullMQ trims each queue's events stream to 10,000 entries."""


async def test_q15_a_soak_ends_bounded_by_retention_not_by_the_number_of_jobs(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    postgres_dsn: str,
    queue_adapter: QueuePort,
    scale: Scale,
    figures: Figures,
) -> None:
    """Every job completes with its run-history row; Redis keeps at most the last 1,000
    completed jobs and its memory grows by no more than those; Postgres holds one row per
    attempt, all of which the run-history retention deletes once they are old enough."""
    total = scale.soak_jobs
    (tmp_path / "soak_app.py").write_text(APP)
    redis = Redis.from_url(redis_url)
    db = await asyncpg.connect(postgres_dsn)
    worker: Worker | None = None
    try:
        memory_before = await _used_memory(redis)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "portside.app.cli",
            "worker",
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
                "PORTSIDE_REDIS_URL": redis_url,
                "PORTSIDE_REDIS_PREFIX": redis_prefix,
                "PORTSIDE_POSTGRES_DSN": postgres_dsn,
                "PORTSIDE_APP": "soak_app:registry",
                "PORTSIDE_LOG_LEVEL": "WARNING",
            },
            cwd=tmp_path,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        worker = Worker(process)
        started = asyncio.get_running_loop().time()
        for begin in range(0, total, BULK):
            jobs = [
                NewJob(name="tick", data={"n": n}) for n in range(begin, min(total, begin + BULK))
            ]
            await queue_adapter.enqueue_bulk(QUEUE, jobs)

        async def all_recorded() -> bool:
            done = await db.fetchval("SELECT count(*) FROM job_runs WHERE status = 'completed'")
            return bool(done == total)

        await wait_for(
            all_recorded,
            timeout=scale.deadline,
            message=f"{total} completed run-history rows",
            interval=0.25,
        )
        seconds = asyncio.get_running_loop().time() - started
        process.send_signal(signal.SIGTERM)
        assert await worker.wait(timeout=60) == 0, worker.other[-10:]

        counts = await queue_adapter.counts(QUEUE)
        keys = [key async for key in redis.scan_iter(match=f"{redis_prefix}*", count=1_000)]
        memory_after = await _used_memory(redis)
        rows = await db.fetchval("SELECT count(*) FROM job_runs")
        runs_bytes = await db.fetchval("SELECT pg_total_relation_size('job_runs')")
        failures = await db.fetchval("SELECT count(*) FROM job_failures")
        history = PostgresHistory(postgres_dsn)
        try:
            purged = await history.purge_runs(now=datetime.now(UTC) + timedelta(days=31))
        finally:
            await history.close()
        rows_after_retention = await db.fetchval("SELECT count(*) FROM job_runs")
    finally:
        if worker is not None and worker.process.returncode is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
            await worker.process.wait()
        await redis.aclose()
        await db.close()

    figures.update(
        jobs=total,
        run_seconds=round(seconds, 1),
        jobs_per_second=round(total / seconds),
        redis_completed_kept=counts.completed,
        redis_keys=len(keys),
        redis_used_memory_before=memory_before,
        redis_used_memory_after=memory_after,
        job_runs_rows=rows,
        job_runs_bytes=runs_bytes,
        job_failures_rows=failures,
        job_runs_purged_at_31_days=purged,
    )
    kept = DEFAULT_KEEP_COMPLETED.count
    assert kept is not None
    assert (counts.completed, counts.failed, counts.depth) == (kept, 0, 0)
    # The kept jobs' hashes plus the queue's own keys (wait, active, completed, meta, events,
    # marker, id counter, ...): nothing per job beyond the kept ones.
    assert len(keys) <= kept + QUEUE_KEYS
    bound = kept * JOB_BYTES_BOUND + EVENTS_BYTES_BOUND
    assert memory_after - memory_before < bound, (memory_before, memory_after)
    assert rows == total, "one run-history row per attempt"
    assert failures == 0
    assert purged == total
    assert rows_after_retention == 0


async def _used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])
