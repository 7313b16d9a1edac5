"""Queue contract, part 7: waiting for a job's result and job logs (Q7)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from portside.ports import (
    ConfigurationError,
    Job,
    JobFailedError,
    JobNotFoundError,
    JobOptions,
    PermanentError,
    ValidationError,
    WaitTimeoutError,
)
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.contracts.support import DEADLINE, expect_invalid

__all__ = ["ResultContract"]


async def _answer(job: Job) -> Any:
    if job.data.get("fail"):
        raise PermanentError("no answer")
    return {"answer": job.data.get("n", 0) * 2}


class ResultContract:
    """Q7 results and logs. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_q7_wait_until_finished_returns_the_result_once_the_job_completes(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: waits started before the job ran (two on one job) return its result when it
        completes; a wait on a finished job returns at once."""
        queue = queue_driver.queue
        ref = await queue.enqueue("answers", "ask", {"n": 21})
        waits = [
            asyncio.ensure_future(queue.wait_until_finished("answers", ref.id, DEADLINE))
            for _ in range(2)
        ]
        await asyncio.sleep(0)  # let both waits look at the job before it runs
        queue.consume("answers", _answer)
        await queue_driver.drain("answers")
        assert await asyncio.gather(*waits) == [{"answer": 42}, {"answer": 42}]
        assert await queue.wait_until_finished("answers", ref.id, DEADLINE) == {"answer": 42}

    async def test_q7_wait_until_finished_raises_the_jobs_failure(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a job that failed for good raises ``JobFailedError`` with its reason and
        classification, both for a wait started before and after the failure."""
        queue = queue_driver.queue
        ref = await queue.enqueue("answers", "ask", {"fail": True})
        early = asyncio.ensure_future(queue.wait_until_finished("answers", ref.id, DEADLINE))
        await asyncio.sleep(0)
        queue.consume("answers", _answer)
        await queue_driver.drain("answers")
        with pytest.raises(JobFailedError, match="no answer") as before:
            await early
        with pytest.raises(JobFailedError) as after:
            await queue.wait_until_finished("answers", ref.id, DEADLINE)
        for error in (before.value, after.value):
            assert (error.job_id, error.queue) == (ref.id, "answers")
            assert error.failed_reason == "PermanentError: no answer"
            assert error.failure_kind == "permanent"

    async def test_q7_wait_until_finished_times_out_naming_the_job(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a job that does not finish in time raises ``WaitTimeoutError`` (a
        ``TimeoutError``) naming the job and its state; an unknown job raises
        ``JobNotFoundError``; the timeout must be above 0."""
        queue = queue_driver.queue
        ref = await queue.enqueue("slow", "never-run", {})
        with pytest.raises(WaitTimeoutError, match=ref.id) as info:
            await queue.wait_until_finished("slow", ref.id, 0.2)
        assert isinstance(info.value, TimeoutError)
        assert info.value.state == "waiting"
        with pytest.raises(JobNotFoundError, match="no-such-job"):
            await queue.wait_until_finished("slow", "no-such-job", DEADLINE)
        with expect_invalid("timeout"):
            await queue.wait_until_finished("slow", ref.id, 0)

    async def test_q7_wait_until_finished_learns_that_the_job_was_removed(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a job removed while awaited ends the wait with ``JobNotFoundError``."""
        queue = queue_driver.queue
        ref = await queue.enqueue("removed-while-waiting", "gone", {})
        wait = asyncio.ensure_future(
            queue.wait_until_finished("removed-while-waiting", ref.id, DEADLINE)
        )
        await asyncio.sleep(0)
        await queue.remove_job("removed-while-waiting", ref.id)
        with pytest.raises(JobNotFoundError, match="removed"):
            await wait

    async def test_q7_closing_the_adapter_ends_open_waits(self, queue_driver: QueueDriver) -> None:
        """Q7: ``close()`` ends a wait still open with ``ConfigurationError`` instead of
        leaving it to its deadline."""
        queue = queue_driver.queue
        ref = await queue.enqueue("closing", "never-run", {})
        wait = asyncio.ensure_future(queue.wait_until_finished("closing", ref.id, DEADLINE))
        await asyncio.sleep(0)
        await queue.close()
        with pytest.raises(ConfigurationError, match="closed"):
            await wait

    async def test_q7_a_deduplicated_enqueue_waits_for_the_first_job(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a deduplicated enqueue returns the first job's ref, and waiting on it yields
        the first job's result."""
        queue = queue_driver.queue
        options = JobOptions(dedupe_key="question")
        first = await queue.enqueue("dedupe-waits", "ask", {"n": 1}, options=options)
        second = await queue.enqueue("dedupe-waits", "ask", {"n": 2}, options=options)
        wait = asyncio.ensure_future(queue.wait_until_finished("dedupe-waits", second.id, DEADLINE))
        queue.consume("dedupe-waits", _answer)
        await queue_driver.drain("dedupe-waits")
        assert second.id == first.id
        assert await wait == {"answer": 2}

    async def test_q7_a_handler_logs_lines_kept_up_to_keep_logs(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: ``job.log`` appends lines to the job's logs (BullMQ job logs); ``keep_logs``
        keeps the newest; ``get_logs`` pages them either way and counts them."""
        queue = queue_driver.queue
        refused: list[str] = []

        async def chatty(job: Job) -> Any:
            for step in range(5):
                await job.log(f"step {step} of {job.name}")
            try:
                await job.log(123)  # type: ignore[arg-type]
            except ValidationError as exc:
                refused.append(str(exc.field))
            return None

        kept = await queue.enqueue("logged", "kept", {}, options=JobOptions(keep_logs=3))
        full = await queue.enqueue("logged", "full", {})
        silent = await queue.enqueue("logged", "silent", {})
        queue.consume("logged", chatty)
        await queue_driver.drain("logged")
        assert refused == ["line"] * 3
        logs = await queue.get_logs("logged", kept.id)
        assert (logs.lines, logs.count) == ([f"step {i} of kept" for i in (2, 3, 4)], 3)
        page = await queue.get_logs("logged", full.id, offset=1, limit=2, ascending=False)
        assert (page.lines, page.count) == (["step 3 of full", "step 2 of full"], 5)
        await queue.remove_job("logged", silent.id)
        with pytest.raises(JobNotFoundError):
            await queue.get_logs("logged", silent.id)
        empty = await queue.enqueue("logged", "untouched", {})
        assert (await queue.get_logs("logged", empty.id)).count == 0
