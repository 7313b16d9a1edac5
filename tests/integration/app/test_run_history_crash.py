"""A3, Q15: a worker SIGKILLed with attempts in flight loses no run-history row of a finished
attempt; the ``running`` rows it leaves are closed as ``lost`` by the next worker, and the
jobs' reruns get rows of their own."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from portside.ports import NewJob, QueuePort
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker, worker_env

pytestmark = pytest.mark.integration

QUEUE = "platform:crashy"
QUICK, LONG = 20, 5
APP = textwrap.dedent(
    '''
    """Jobs that finish at once, or hold while this worker's HOLD is 1."""
    import asyncio
    import os

    from pydantic import BaseModel

    from portside.app import JobDefinition, Registry


    class Work(BaseModel):
        n: int
        hold: bool = False


    async def work(payload: Work, ctx) -> int:
        if payload.hold and os.environ.get("HOLD") == "1":
            await asyncio.Event().wait()
        return payload.n


    registry = Registry(
        [JobDefinition(name="work", queue="platform:crashy", payload=Work, handler=work,
                       concurrency=10, timeout=600)]
    )
    '''
)


async def test_a3_a_killed_workers_rows_are_closed_as_lost_and_no_finished_row_is_lost(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    postgres_dsn: str,
    queue_adapter: QueuePort,
    db: asyncpg.Connection,
) -> None:
    (tmp_path / "crashy_app.py").write_text(APP)
    env = worker_env(
        redis_url,
        redis_prefix,
        postgres_dsn,
        "crashy_app:registry",
        app_dir=tmp_path,
        # Locks expire 1 s after a death; rows nobody vouched for are lost after 1.5 s.
        PORTSIDE_BULLMQ_LOCK_DURATION="1",
        PORTSIDE_BULLMQ_STALLED_INTERVAL="0.5",
    )
    jobs = [NewJob(name="work", data={"n": n}) for n in range(QUICK)]
    jobs += [NewJob(name="work", data={"n": 100 + n, "hold": True}) for n in range(LONG)]
    refs = await queue_adapter.enqueue_bulk(QUEUE, jobs)
    held_ids = {ref.id for ref in refs[QUICK:]}

    async def rows(status: str) -> int:
        count = await db.fetchval("SELECT count(*) FROM job_runs WHERE status = $1", status)
        return int(count)

    def counted(completed: int, status: str, count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await rows("completed") == completed and await rows(status) == count

        return check

    victim = await Worker.start({**env, "HOLD": "1"}, tmp_path)
    survivor: Worker | None = None
    try:
        # The quick jobs end with their rows; the held ones get running rows after a second.
        await wait_for(
            counted(QUICK, "running", LONG),
            timeout=60,
            message=f"{QUICK} completed rows and {LONG} running rows",
        )
        os.killpg(victim.process.pid, signal.SIGKILL)
        assert await victim.wait(timeout=10) == -signal.SIGKILL

        survivor = await Worker.start({**env, "HOLD": "0"}, tmp_path)
        await wait_for(
            counted(QUICK + LONG, "lost", LONG),
            timeout=60,
            message=f"{QUICK + LONG} completed rows and {LONG} lost rows",
        )
        survivor.process.send_signal(signal.SIGTERM)
        assert await survivor.wait(timeout=30) == 0
    finally:
        for worker in (victim, survivor):
            if worker is not None and worker.process.returncode is None:
                os.killpg(worker.process.pid, signal.SIGKILL)
                await worker.process.wait()

    runs = await db.fetch("SELECT job_id, attempt, status, finished_at FROM job_runs")
    assert len(runs) == QUICK + 2 * LONG
    assert {run["status"] for run in runs} == {"completed", "lost"}
    assert all(run["finished_at"] is not None for run in runs)
    lost = {run["job_id"] for run in runs if run["status"] == "lost"}
    assert lost == held_ids, "exactly the killed attempts are lost"
    completed = [run["job_id"] for run in runs if run["status"] == "completed"]
    assert sorted(completed) == sorted(ref.id for ref in refs), "one completed row per job"
    assert survivor is not None
    assert "job_runs.lost" in survivor.names()
