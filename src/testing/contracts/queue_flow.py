"""Queue contract, part 3: concurrency and rate limits (Q6), the queue-wide cap (Q13), states
and results (Q7), retention (Q15), workers."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from portside.ports import Job, JobInfo, JobOptions, NewJob, RateLimit, Retention
from portside.ports.inputs import MAX_CONCURRENCY
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.contracts.support import (
    ConcurrencyProbe,
    collect_events,
    expect_invalid,
    wait_for_event,
)

__all__ = ["FlowContract"]


async def _done(job: Job) -> Any:
    return {"id": job.id}


class FlowContract:
    """Q6, Q7, Q13, Q15 and worker lifecycle. Needs a ``queue_driver`` fixture yielding a
    ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    @pytest.mark.parametrize("jobs", [100, 500])
    async def test_q6_flood_never_runs_more_than_the_concurrency(
        self, queue_driver: QueueDriver, jobs: int
    ) -> None:
        """Q6: flooding a queue with concurrency 5 runs 5 at once, never more, and all finish."""
        queue = queue_driver.queue
        probe = ConcurrencyProbe(limit=5)
        await queue.enqueue_bulk("flood", [NewJob(name="work", data={"i": i}) for i in range(jobs)])
        queue.consume("flood", probe, concurrency=5)
        outcomes = await queue_driver.drain("flood")
        assert not probe.stuck, f"5 attempts never ran at once (peak {probe.peak})"
        assert probe.peak == 5, f"{probe.peak} attempts ran at once with concurrency 5"
        assert len(outcomes) == jobs
        assert {o.status for o in outcomes} == {"completed"}
        assert (await queue.counts("flood")).completed == jobs

    @pytest.mark.parametrize("concurrency", [0, -1, MAX_CONCURRENCY + 1, True, 2.5, "5"])
    async def test_q6_concurrency_out_of_bounds_is_refused(
        self, queue_driver: QueueDriver, concurrency: object
    ) -> None:
        """Q6: a worker runs 1 to MAX_CONCURRENCY (10000) jobs at once; anything else names
        ``concurrency`` and no worker is made."""
        queue = queue_driver.queue
        with expect_invalid("concurrency", "from 1 to 10000"):
            queue.consume("bounded", _done, concurrency=cast(Any, concurrency))
        await queue.enqueue("bounded", "work", {})
        queue.consume("bounded", _done, concurrency=MAX_CONCURRENCY)
        outcomes = await queue_driver.drain("bounded")
        assert [o.status for o in outcomes] == ["completed"]

    async def test_q6_rate_limit_holds_jobs_until_the_window_passes(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q6: with at most 2 jobs per 60 s, a drain starts 2; the rest wait for the window."""
        queue = queue_driver.queue
        await queue.enqueue_bulk("limited", [NewJob(name="call", data={"i": i}) for i in range(5)])
        queue.consume("limited", _done, concurrency=5, rate_limit=RateLimit(max=2, per=60))
        assert len(await queue_driver.drain("limited")) == 2
        assert (await queue.counts("limited")).waiting == 3
        await queue_driver.advance(61)
        assert len(await queue_driver.drain("limited")) == 2
        await queue_driver.advance(61)
        assert len(await queue_driver.drain("limited")) == 1
        assert (await queue.counts("limited")).completed == 5

    @pytest.mark.parametrize("jobs", [100, 500])
    async def test_q13_queue_cap_holds_across_workers(
        self, queue_driver: QueueDriver, jobs: int
    ) -> None:
        """Q13: two workers of concurrency 5 on a queue capped at 3 run 3 jobs at once between
        them, never more, and finish the flood."""
        queue = queue_driver.queue
        probe = ConcurrencyProbe(limit=3)
        await queue.set_queue_concurrency("capped", 3)
        flood = [NewJob(name="work", data={"i": i}) for i in range(jobs)]
        await queue.enqueue_bulk("capped", flood)
        queue.consume("capped", probe, concurrency=5)
        queue.consume("capped", probe, concurrency=5)
        outcomes = await queue_driver.drain("capped")
        assert not probe.stuck, f"3 attempts never ran at once (peak {probe.peak})"
        assert probe.peak == 3, f"{probe.peak} attempts ran at once under a queue cap of 3"
        assert len(outcomes) == jobs
        assert (await queue.counts("capped")).completed == jobs

    async def test_q13_queue_cap_reads_back_and_is_removed_with_none(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q13: no cap by default; a cap reads back; None removes it and the worker's own
        concurrency is the only limit again."""
        queue = queue_driver.queue
        assert await queue.queue_concurrency("uncapped") is None
        await queue.set_queue_concurrency("uncapped", 1)
        assert await queue.queue_concurrency("uncapped") == 1
        await queue.set_queue_concurrency("uncapped", None)
        assert await queue.queue_concurrency("uncapped") is None
        probe = ConcurrencyProbe(limit=4)
        await queue.enqueue_bulk("uncapped", [NewJob(name="work", data={"i": i}) for i in range(8)])
        queue.consume("uncapped", probe, concurrency=4)
        assert len(await queue_driver.drain("uncapped")) == 8
        assert probe.peak == 4, f"peak {probe.peak} after the cap was removed"

    @pytest.mark.parametrize("limit", [0, -1, MAX_CONCURRENCY + 1, True, 2.5, "5"])
    async def test_q13_queue_cap_out_of_bounds_is_refused(
        self, queue_driver: QueueDriver, limit: object
    ) -> None:
        """Q13: a queue-wide cap is 1 to MAX_CONCURRENCY (10000) or None; anything else names
        ``limit`` and leaves the queue as it was."""
        queue = queue_driver.queue
        await queue.set_queue_concurrency("bounded-cap", 2)
        with expect_invalid("limit", "from 1 to 10000"):
            await queue.set_queue_concurrency("bounded-cap", cast(Any, limit))
        assert await queue.queue_concurrency("bounded-cap") == 2

    async def test_q13_started_workers_wait_at_the_cap_and_take_freed_slots(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q13: started workers hold at the cap of 2 while two jobs run; when those end, the
        waiting jobs start (a freed slot is taken), and raising the cap starts more at once."""
        queue = queue_driver.queue
        release = asyncio.Event()
        running: set[str] = set()
        peak = 0
        two = asyncio.Event()
        four = asyncio.Event()

        async def hold(job: Job) -> Any:
            nonlocal peak
            running.add(job.id)
            peak = max(peak, len(running))
            if len(running) >= 2:
                two.set()
            if len(running) >= 4:
                four.set()
            try:
                await release.wait()
            finally:
                running.discard(job.id)

        await queue.set_queue_concurrency("held", 2)
        stream = queue.events("held")
        first = queue.consume("held", hold, concurrency=3)
        second = queue.consume("held", hold, concurrency=3)
        try:
            await first.start()
            await second.start()
            refs = await queue.enqueue_bulk(
                "held", [NewJob(name="work", data={"i": i}) for i in range(6)]
            )
            await wait_for_event(two, "two jobs to run under the cap of 2")
            assert peak == 2, f"{peak} jobs ran at once under a cap of 2"
            await queue.set_queue_concurrency("held", 4)
            await wait_for_event(four, "four jobs to run once the cap was raised to 4")
            release.set()
            await collect_events(
                stream,
                lambda seen: (
                    {e.job_id for e in seen if e.kind == "completed"} >= {ref.id for ref in refs}
                ),
                "all six jobs to complete",
            )
        finally:
            release.set()
            await first.close(grace=5)
            await second.close(grace=5)
            await stream.aclose()
        assert peak == 4, f"{peak} jobs ran at once under a cap of 4"

    async def test_q7_state_progress_and_result_are_readable_by_id(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: waiting, then active with progress visible while running, then completed with
        progress, result and timestamps; an unknown id reads as None."""
        queue = queue_driver.queue
        during: list[JobInfo | None] = []

        async def report(job: Job) -> Any:
            await job.update_progress(40)
            during.append(await queue.get_job("reports", job.id))
            await job.update_progress({"done": 3, "total": 4})
            return {"rows": 3}

        ref = await queue.enqueue("reports", "build", {"org": "o-1"})
        waiting = await queue.get_job("reports", ref.id)
        assert waiting is not None
        assert (waiting.state, waiting.attempts_made, waiting.progress) == ("waiting", 0, 0)
        queue.consume("reports", report)
        outcomes = await queue_driver.drain("reports")
        assert [(o.status, o.result) for o in outcomes] == [("completed", {"rows": 3})]
        active = during[0]
        assert active is not None
        assert (active.state, active.progress) == ("active", 40)
        done = await queue.get_job("reports", ref.id)
        assert done is not None
        assert done.state == "completed"
        assert done.progress == {"done": 3, "total": 4}
        assert done.result == {"rows": 3}
        assert done.attempts_made == 1
        assert done.processed_at is not None
        assert done.finished_at is not None
        assert done.created_at <= done.processed_at <= done.finished_at
        assert await queue.get_job("reports", "no-such-job") is None

    async def test_q15_retention_removes_finished_jobs(self, queue_driver: QueueDriver) -> None:
        """Q15: ``remove_on_complete``/``remove_on_fail`` (True, a count, or a Retention)."""
        queue = queue_driver.queue
        gone = await queue.enqueue("kept", "a", {}, options=JobOptions(remove_on_complete=True))
        keep_two = JobOptions(remove_on_complete=Retention(count=2))
        kept = [await queue.enqueue("kept", f"k{i}", {}, options=keep_two) for i in range(3)]
        failing = await queue.enqueue(
            "kept", "fails", {"fail": True}, options=JobOptions(attempts=1, remove_on_fail=True)
        )

        async def handler(job: Job) -> Any:
            if job.data.get("fail"):
                raise RuntimeError("expected")
            return None

        queue.consume("kept", handler)
        assert len(await queue_driver.drain("kept")) == 5
        assert await queue.get_job("kept", gone.id) is None
        assert await queue.get_job("kept", failing.id) is None
        assert await queue.get_job("kept", kept[0].id) is None
        for ref in kept[1:]:
            info = await queue.get_job("kept", ref.id)
            assert info is not None
            assert info.state == "completed"
        counts = await queue.counts("kept")
        assert (counts.completed, counts.failed) == (2, 0)

    async def test_q15_a_workers_retention_applies_to_jobs_without_their_own(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q15: a worker's ``remove_on_complete``/``remove_on_fail`` trim finished jobs that
        set no retention of their own, as BullMQ's worker options do (jobs from any producer
        stay bounded); a job's own setting wins when it finishes."""
        queue = queue_driver.queue
        plain = [NewJob(name="ok", data={"i": i}) for i in range(5)]
        plain += [NewJob(name="bad", data={"fail": True}, options=JobOptions(attempts=1))] * 3

        async def handler(job: Job) -> Any:
            if job.data.get("fail"):
                raise RuntimeError("expected")
            return None

        await queue.enqueue_bulk("trimmed", plain)
        queue.consume("trimmed", handler, remove_on_complete=2, remove_on_fail=Retention(count=1))
        assert len(await queue_driver.drain("trimmed")) == 8
        counts = await queue.counts("trimmed")
        assert (counts.completed, counts.failed) == (2, 1)
        await queue.enqueue("trimmed", "ok", {"i": 9}, options=JobOptions(remove_on_complete=4))
        assert len(await queue_driver.drain("trimmed")) == 1
        assert (await queue.counts("trimmed")).completed == 3

    async def test_q15_a_workers_retention_is_checked(self, queue_driver: QueueDriver) -> None:
        """Q15: a worker's retention follows the rules of ``JobOptions``, naming the field."""
        with expect_invalid("remove_on_complete"):
            queue_driver.queue.consume("trimmed", _done, remove_on_complete=-1)
        with expect_invalid("remove_on_fail"):
            queue_driver.queue.consume("trimmed", _done, remove_on_fail=cast(Any, "all"))

    async def test_started_worker_runs_jobs_in_the_background(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7, Q8: a started worker processes jobs without drain; after close it takes none."""
        queue = queue_driver.queue
        stream = queue.events("live")
        worker = queue.consume("live", _done)
        try:
            await worker.start()
            ref = await queue.enqueue("live", "ping", {})
            await collect_events(
                stream,
                lambda seen: any(e.kind == "completed" and e.job_id == ref.id for e in seen),
                f"job {ref.id} to complete on the started worker",
            )
            status = worker.status()
            assert status.running
            assert status.queue == "live"
            assert status.concurrency == 1
        finally:
            await worker.close(grace=5)
            await stream.aclose()
        assert not worker.status().running
        late = await queue.enqueue("live", "late", {})
        info = await queue.get_job("live", late.id)
        assert info is not None
        assert info.state == "waiting"
