"""Q16: a job whose handler kills its worker process on every attempt, run by ``portside
worker`` under a supervisor that restarts it, ends like every final failure: failed in
BullMQ, a closed run row, a dead letter, the ``failed`` queue event and the log lines."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import asyncpg
import pytest

from portside.ports import QueueEvent, QueuePort
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker, worker_env

pytestmark = pytest.mark.integration

QUEUE = "platform:crash"
APP = textwrap.dedent(
    '''
    """A job whose handler kills its own worker process, every time."""
    import os

    from pydantic import BaseModel

    from portside.app import JobDefinition, Registry


    class Crash(BaseModel):
        token: str


    async def crash(payload: Crash, ctx) -> None:
        os._exit(17)


    registry = Registry([JobDefinition(name="crash", queue="platform:crash", payload=Crash,
                                       handler=crash)])
    '''
)
MAX_RESTARTS = 8


async def test_q16_a_job_that_kills_its_worker_every_time_is_dead_lettered(
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    postgres_dsn: str,
    queue_adapter: QueuePort,
    db: asyncpg.Connection,
) -> None:
    (tmp_path / "crash_app.py").write_text(APP)
    env = worker_env(
        redis_url,
        redis_prefix,
        postgres_dsn,
        "crash_app:registry",
        app_dir=tmp_path,
        # A crashed worker's lock expires after 1 s; BullMQ's default allows one stall.
        PORTSIDE_BULLMQ_LOCK_DURATION="1",
        PORTSIDE_BULLMQ_STALLED_INTERVAL="0.5",
        PORTSIDE_BULLMQ_MAX_STALLED_COUNT="1",
    )
    events = queue_adapter.events(QUEUE)
    failed: asyncio.Future[QueueEvent] = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        async for seen in events:
            if seen.kind == "failed" and not failed.done():
                failed.set_result(seen)

    watcher = asyncio.create_task(watch())
    ref = await queue_adapter.enqueue(QUEUE, "crash", {"token": "t-1"})

    async def dead_lettered() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM job_failures WHERE job_id = $1", ref.id)
        )

    crashes: list[int] = []
    started: list[Worker] = []
    survivor: Worker | None = None
    try:
        # The supervisor: restart the worker each time it dies, as systemd or Kubernetes would.
        for _ in range(MAX_RESTARTS):
            worker = await Worker.start(env, tmp_path)
            started.append(worker)
            done = asyncio.create_task(worker.process.wait())
            letter = asyncio.create_task(
                wait_for(dead_lettered, timeout=60, message="the dead letter")
            )
            finished, _ = await asyncio.wait(
                [done, letter], timeout=60, return_when=asyncio.FIRST_COMPLETED
            )
            assert finished, f"neither a crash nor a dead letter within 60 s: {worker.names()}"
            if letter in finished:
                done.cancel()
                survivor = worker
                break
            letter.cancel()
            crashes.append(await worker.wait(timeout=10))
        assert survivor is not None, f"no dead letter after {len(crashes)} crashes"
        event = await asyncio.wait_for(asyncio.shield(failed), timeout=30)
        await wait_for(
            lambda: "job.dead_lettered" in survivor.names(),
            timeout=30,
            message="the job.dead_lettered log line",
        )
        survivor.process.send_signal(signal.SIGTERM)
        assert await survivor.wait(timeout=30) == 0
    finally:
        watcher.cancel()
        await events.aclose()
        for leftover in started:
            if leftover.process.returncode is None:
                os.killpg(leftover.process.pid, signal.SIGKILL)
                await leftover.process.wait()

    assert crashes == [17, 17], "the handler ran twice (once, then after one allowed stall)"
    info = await queue_adapter.get_job(QUEUE, ref.id)
    assert info is not None
    assert info.state == "failed"
    assert info.failed_reason is not None
    assert "stalled more than allowable limit" in info.failed_reason
    assert event.job_id == ref.id
    letter_row = await db.fetchrow("SELECT * FROM job_failures WHERE job_id = $1", ref.id)
    assert letter_row is not None
    assert letter_row["error_class"] == "JobStalledError"
    assert "stalled more than allowable limit" in letter_row["error_message"]
    assert letter_row["attempts"] == 1
    assert '"token": "t-1"' in letter_row["data"]
    runs = await db.fetch("SELECT * FROM job_runs WHERE job_id = $1 ORDER BY id", ref.id)
    assert [(run["status"], run["error_class"]) for run in runs] == [("failed", "JobStalledError")]
    assert all(run["finished_at"] is not None for run in runs)
    failed_line = survivor.event("job.failed")
    assert (failed_line["job_id"], failed_line["error_class"]) == (ref.id, "JobStalledError")
