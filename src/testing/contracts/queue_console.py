"""Queue contract, part 8: what the operator console reads (OPS1): connected workers, when
job schedulers run next, and a job's options and stack traces."""

from __future__ import annotations

from typing import Any

import pytest

from portside.ports import Job, JobOptions, PermanentError, Schedule
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.waiting import wait_for

__all__ = ["ConsoleContract"]


async def _done(job: Job) -> Any:
    return "ok"


async def _fails(job: Job) -> Any:
    raise PermanentError("broken on purpose")


class ConsoleContract:
    """OPS1. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_ops1_list_workers_shows_started_workers_until_they_close(
        self, queue_driver: QueueDriver
    ) -> None:
        """OPS1: a started worker is listed by ``list_workers`` of its queue only, once, and
        is gone after ``close``."""
        queue = queue_driver.queue
        assert await queue.list_workers("watched") == []
        worker = queue.consume("watched", _done, concurrency=2)
        await worker.start()
        try:
            workers = await queue.list_workers("watched")
            assert len(workers) == 1
            assert workers[0].name
            assert workers[0].age >= 0
            assert await queue.list_workers("elsewhere") == []
        finally:
            await worker.close()

        async def gone() -> bool:
            return await queue.list_workers("watched") == []

        await wait_for(gone, timeout=5, message="the closed worker to leave list_workers")

    async def test_ops1_schedule_next_runs_names_each_scheduler(
        self, queue_driver: QueueDriver
    ) -> None:
        """OPS1: ``schedule_next_runs`` gives each job scheduler's next run, and forgets a
        removed one."""
        queue = queue_driver.queue
        await queue.upsert_schedule(
            "timed", Schedule(scheduler_id="hourly", name="sync", pattern="0 * * * *")
        )
        await queue.upsert_schedule("timed", Schedule(scheduler_id="often", name="sync", every=60))
        runs = await queue.schedule_next_runs("timed")
        assert set(runs) == {"hourly", "often"}
        assert all(at > 0 for at in runs.values())
        await queue.remove_schedule("timed", "often")
        assert set(await queue.schedule_next_runs("timed")) == {"hourly"}
        assert await queue.schedule_next_runs("unscheduled") == {}

    async def test_ops1_job_info_has_its_options_and_stack_traces(
        self, queue_driver: QueueDriver
    ) -> None:
        """OPS1: a job's snapshot carries the options it was added with and, once it failed,
        the traceback of its attempt."""
        queue = queue_driver.queue
        ref = await queue.enqueue(
            "detailed", "job", {"a": 1}, options=JobOptions(attempts=4, priority=3)
        )
        info = await queue.get_job("detailed", ref.id)
        assert info is not None
        assert info.options is not None
        assert (info.options.attempts, info.options.priority) == (4, 3)
        assert info.stacktrace == []
        queue.consume("detailed", _fails)
        await queue_driver.drain("detailed")
        failed = await queue.get_job("detailed", ref.id)
        assert failed is not None
        assert failed.state == "failed"
        assert len(failed.stacktrace) == 1
        assert "broken on purpose" in failed.stacktrace[0]
        assert "Traceback" in failed.stacktrace[0]
