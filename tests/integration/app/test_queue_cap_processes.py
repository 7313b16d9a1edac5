"""Q13: three ``portside worker`` processes of concurrency 10 on a queue capped at 5.

The handlers record when they start and end (``time.monotonic_ns``, one clock for every
process of the host) and return it as the job's result; the test computes the largest
number of attempts that overlapped from those timestamps alone, not from anything the
adapter counts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from portside.app.runmode import with_run_mode
from portside.infra import Infra
from portside.ports import NewJob
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker, max_overlap, worker_env

pytestmark = pytest.mark.integration

QUEUE = "media:colors"

APP = textwrap.dedent(
    '''
    """Color extraction: at most 5 at once across the fleet, 10 per worker process."""
    import asyncio
    import os
    import time

    from pydantic import BaseModel

    from portside.app import JobDefinition, Registry


    class Image(BaseModel):
        n: int


    async def extract(payload: Image, ctx) -> dict:
        start = time.monotonic_ns()
        await asyncio.sleep(0.004)  # the job's own work
        return {"start": start, "end": time.monotonic_ns(), "pid": os.getpid()}


    registry = Registry(
        [
            JobDefinition(
                name="extract",
                queue="media:colors",
                payload=Image,
                handler=extract,
                concurrency=10,
                queue_concurrency=5,
                timeout=30,
            )
        ]
    )
    '''
)


@pytest.fixture
async def fleet(
    tmp_path: Path, redis_url: str, redis_prefix: str, postgres_dsn: str
) -> AsyncIterator[Callable[[int], Awaitable[Worker]]]:
    """Start ``portside worker --processes N`` on the color app; killed if left running."""
    (tmp_path / "colors_app.py").write_text(APP)
    env = worker_env(redis_url, redis_prefix, postgres_dsn, "colors_app:registry", app_dir=tmp_path)
    started: list[asyncio.subprocess.Process] = []

    async def start(processes: int) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "portside.app.cli",
            "worker",
            "--processes",
            str(processes),
            "--grace",
            "10",
            env=env,
            cwd=tmp_path,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        started.append(process)
        group = Worker(process)
        await group.ready(processes)
        return group

    yield start
    for process in started:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def test_max_overlap_counts_what_runs_at_once() -> None:
    assert max_overlap([(0, 10), (5, 15), (10, 20)]) == 2
    assert max_overlap([(0, 10), (1, 9), (2, 8)]) == 3
    assert max_overlap([]) == 0


@pytest.mark.parametrize("jobs", [100, 500])
async def test_q13_three_worker_processes_never_run_more_than_the_cap(
    fleet: Callable[[int], Awaitable[Worker]],
    platform_infra: Infra,
    jobs: int,
    record_property: Any,
) -> None:
    """Q13: 3 processes x concurrency 10 could run 30 at once; the cap of 5 holds across them,
    and is reached."""
    group = await fleet(3)
    queue = platform_infra.queue
    assert await queue.queue_concurrency(QUEUE) == 5
    refs = await queue.enqueue_bulk(
        QUEUE,
        [NewJob(name="extract", data=with_run_mode({"n": n}, "manual")) for n in range(jobs)],
    )

    async def all_completed() -> bool:
        return (await queue.counts(QUEUE)).completed == jobs

    await wait_for(all_completed, timeout=120, message=f"{jobs} jobs to complete")
    code = await group.stop()
    assert code == 0, group.other[-20:]

    results = []
    for ref in refs:
        info = await queue.get_job(QUEUE, ref.id)
        assert info is not None, ref.id
        results.append(info.result)
    spans = [(result["start"], result["end"]) for result in results]
    peak = max_overlap(spans)
    pids = {result["pid"] for result in results}
    record_property(f"q13_max_overlap_{jobs}", peak)
    record_property(f"q13_processes_used_{jobs}", len(pids))
    assert peak <= 5, f"{peak} jobs ran at once under a queue-wide cap of 5"
    assert peak == 5, f"the flood never filled the cap (peak {peak})"
    # The processes start together: one or more of them set the cap, none sets it twice.
    assert 1 <= group.count("queue.concurrency_set") <= 3
