"""E1, Q13, Q14: floods of 100 and 500 ``color-extraction`` jobs over two ``portside worker``
processes never run more than 5 at once.

Each worker process could run 5 (its concurrency and pool size), so 10 together; the
queue-wide cap of 5 must hold across both. The count comes from the handlers' own start and
end timestamps (``time.monotonic_ns`` in the pool children, one clock for the host), returned
in each job's result, not from anything the queue counts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from portside.app.runmode import with_run_mode
from portside.infra import Infra
from portside.ports import NewJob
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker, max_overlap, worker_env

pytestmark = pytest.mark.integration

QUEUE = "color-extraction"


@pytest.fixture
async def two_workers(
    redis_url: str, redis_prefix: str, postgres_dsn: str
) -> AsyncIterator[Callable[[], Awaitable[Worker]]]:
    """Start ``portside worker --processes 2 --app portside.examples.plans:registry`` on the
    color queue; killed if left running."""
    env = worker_env(redis_url, redis_prefix, postgres_dsn, "portside.examples.plans:registry")
    started: list[asyncio.subprocess.Process] = []

    async def start() -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "portside.app.cli",
            "worker",
            "--processes",
            "2",
            "--queues",
            QUEUE,
            "--grace",
            "10",
            env=env,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        started.append(process)
        workers = Worker(process)
        await workers.ready(2)
        return workers

    yield start
    for process in started:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


@pytest.mark.parametrize("jobs", [100, 500])
async def test_e1_color_extraction_flood_over_two_workers_never_exceeds_5(
    two_workers: Callable[[], Awaitable[Worker]],
    platform_infra: Infra,
    jobs: int,
    record_property: Any,
) -> None:
    """E1, Q13, Q14: 100 and 500 color extractions over two worker processes (10 pool children
    between them) all complete, never more than 5 at once."""
    workers = await two_workers()
    queue = platform_infra.queue
    assert await queue.queue_concurrency(QUEUE) == 5
    refs = await queue.enqueue_bulk(
        QUEUE,
        [
            NewJob(
                name="color-extraction",
                data=with_run_mode({"imageId": f"img-{n}", "width": 96, "height": 96}, "manual"),
            )
            for n in range(jobs)
        ],
    )

    async def all_completed() -> bool:
        return (await queue.counts(QUEUE)).completed == jobs

    await wait_for(all_completed, timeout=240, message=f"{jobs} color extractions to complete")
    code = await workers.stop()
    assert code == 0, workers.other[-20:]

    spans = []
    for ref in refs:
        info = await queue.get_job(QUEUE, ref.id)
        assert info is not None, ref.id
        timing = info.result["timing"]
        spans.append((timing["startNs"], timing["endNs"]))
    peak = max_overlap(spans)
    record_property(f"e1_color_max_overlap_{jobs}", peak)
    assert peak <= 5, f"{peak} color extractions ran at once under a queue-wide cap of 5"
    assert peak >= 3, f"the flood never came near the cap (peak {peak})"
    processed = [e["processed"] for e in workers.events if e.get("event") == "worker.stopped"]
    record_property(f"e1_color_processed_per_worker_{jobs}", processed)
    assert len(processed) == 2
    assert sum(processed) == jobs
    # How the jobs split between the two processes is not asserted: under BullMQ's queue-wide
    # cap a worker that finishes a job takes the next one in the same script call, so one
    # process may keep every place (seen: [0, 100]). That the cap holds across processes with
    # local concurrency above it is Q13's test (tests/integration/app/test_queue_cap_processes.py).
