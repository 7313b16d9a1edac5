"""Queue contract, part 4: events (Q8), queue control (Q9), job schedulers (Q11) and the
queue server's memory policy (E2)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from portside.ports import (
    Job,
    JobOptions,
    NewJob,
    PermanentError,
    PortsideError,
    QueueEvent,
    Schedule,
    ServerInfo,
    TransientError,
)
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.contracts.support import (
    collect_events,
    expect_invalid,
    history,
    wait_for_event,
)

__all__ = ["ControlContract"]


async def _done(job: Job) -> Any:
    return "ok"


def _finished(job_ids: set[str]) -> Any:
    def done(events: list[QueueEvent]) -> bool:
        ended = {e.job_id for e in events if e.kind in ("completed", "failed")}
        return job_ids <= ended

    return done


class ControlContract:
    """Q8, Q9, Q11 and E2. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_q8_lifecycle_events_with_attempt_and_classification(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q8: enqueued, active, progress, retrying, completed and failed, each with its
        attempt; failures carry the reason and the classification."""
        queue = queue_driver.queue
        stream = queue.events("telemetry")
        try:

            async def handler(job: Job) -> Any:
                if job.name == "reports-progress":
                    await job.update_progress(50)
                    return {"pages": 2}
                if job.name == "fails":
                    raise PermanentError("bad credentials")
                if job.attempt == 1:
                    raise TransientError("try again")
                return None

            good = await queue.enqueue("telemetry", "reports-progress", {})
            bad = await queue.enqueue("telemetry", "fails", {})
            retried = await queue.enqueue("telemetry", "retried", {})
            queue.consume("telemetry", handler)
            await queue_driver.drain("telemetry")
            events = await collect_events(
                stream, _finished({good.id, bad.id, retried.id}), "every job to finish"
            )
        finally:
            await stream.aclose()
        assert history(events, good.id) == [
            ("enqueued", 0),
            ("active", 1),
            ("progress", 1),
            ("completed", 1),
        ]
        assert history(events, bad.id) == [("enqueued", 0), ("active", 1), ("failed", 1)]
        assert history(events, retried.id) == [
            ("enqueued", 0),
            ("active", 1),
            ("retrying", 1),
            ("active", 2),
            ("completed", 2),
        ]
        by_kind = {(e.job_id, e.kind, e.attempt): e for e in events}
        assert by_kind[(good.id, "progress", 1)].progress == 50
        assert by_kind[(good.id, "completed", 1)].result == {"pages": 2}
        failed = by_kind[(bad.id, "failed", 1)]
        assert (failed.failure_kind, failed.error) == (
            "permanent",
            "PermanentError: bad credentials",
        )
        retry = by_kind[(retried.id, "retrying", 1)]
        assert (retry.failure_kind, retry.error) == ("transient", "TransientError: try again")
        assert all(e.queue == "telemetry" and e.timestamp > 0 for e in events)

    async def test_q8_a_stream_sees_only_events_after_it_was_opened(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q8: ``events(queue)`` captures what happens after the call, of that queue only."""
        queue = queue_driver.queue
        before = await queue.enqueue("watched", "before", {})
        stream = queue.events("watched")
        try:
            await queue.enqueue("other", "elsewhere", {})
            after = await queue.enqueue("watched", "after", {})
            first = await collect_events(stream, lambda seen: len(seen) >= 1, "one event")
        finally:
            await stream.aclose()
        assert (first[0].kind, first[0].job_id, first[0].name) == ("enqueued", after.id, "after")
        assert before.id != after.id

    async def test_q9_pause_holds_jobs_and_resume_releases_them(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: a paused queue runs nothing and counts its jobs as paused; resume runs them."""
        queue = queue_driver.queue
        queue.consume("held", _done)
        await queue.pause("held")
        assert await queue.is_paused("held")
        await queue.enqueue_bulk("held", [NewJob(name="j", data={"i": i}) for i in range(3)])
        assert await queue_driver.drain("held") == []
        counts = await queue.counts("held")
        assert (counts.paused, counts.waiting, counts.depth) == (3, 0, 3)
        await queue.resume("held")
        assert not await queue.is_paused("held")
        assert (await queue.counts("held")).waiting == 3
        assert [o.status for o in await queue_driver.drain("held")] == ["completed"] * 3

    async def test_q9_worker_pause_holds_only_that_worker(self, queue_driver: QueueDriver) -> None:
        """Q9: ``WorkerHandle.pause`` stops intake of that worker; ``resume`` restarts it."""
        queue = queue_driver.queue
        worker = queue.consume("worker-held", _done)
        await worker.pause()
        await queue.enqueue("worker-held", "j", {})
        assert await queue_driver.drain("worker-held") == []
        assert worker.status().paused
        await worker.resume()
        assert [o.status for o in await queue_driver.drain("worker-held")] == ["completed"]

    async def test_q9_purge_removes_waiting_and_delayed_jobs(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: purge (BullMQ ``drain``) removes waiting jobs, and delayed ones unless told not."""
        queue = queue_driver.queue
        await queue.enqueue_bulk("purged", [NewJob(name="w", data={"i": i}) for i in range(2)])
        await queue.enqueue("purged", "d", {}, options=JobOptions(delay=60))
        assert await queue.purge("purged", delayed=False) == 2
        counts = await queue.counts("purged")
        assert (counts.waiting, counts.delayed) == (0, 1)
        await queue.enqueue("purged", "w2", {})
        assert await queue.purge("purged") == 2
        assert (await queue.counts("purged")).depth == 0

    async def test_q9_counts_by_state(self, queue_driver: QueueDriver) -> None:
        """Q9: counts report waiting, delayed, completed and failed jobs."""
        queue = queue_driver.queue

        async def handler(job: Job) -> Any:
            if job.name == "bad":
                raise PermanentError("no")
            return None

        await queue.enqueue("counted", "good", {})
        await queue.enqueue("counted", "bad", {})
        queue.consume("counted", handler)
        await queue_driver.drain("counted")
        await queue.enqueue("counted", "waits", {})
        await queue.enqueue("counted", "later", {}, options=JobOptions(delay=60))
        counts = await queue.counts("counted")
        assert (counts.waiting, counts.active, counts.delayed) == (1, 0, 1)
        assert (counts.completed, counts.failed, counts.paused) == (1, 1, 0)
        assert counts.depth == 2

    async def test_q9_retry_failed_gives_fresh_attempts(self, queue_driver: QueueDriver) -> None:
        """Q9: retry_failed moves failed jobs (all, or one by id) back with fresh attempts."""
        queue = queue_driver.queue
        broken = {"yes": True}

        async def handler(job: Job) -> Any:
            if broken["yes"]:
                raise PermanentError("source down")
            return job.attempt

        refs = [await queue.enqueue("retry", f"j{i}", {}) for i in range(3)]
        queue.consume("retry", handler)
        assert [o.status for o in await queue_driver.drain("retry")] == ["failed"] * 3
        assert await queue.retry_failed("retry", job_id=refs[0].id) == 1
        one = await queue.get_job("retry", refs[0].id)
        assert one is not None
        assert (one.state, one.attempts_made) == ("waiting", 0)
        assert await queue.retry_failed("retry") == 2
        assert await queue.retry_failed("retry") == 0
        assert (await queue.counts("retry")).failed == 0
        broken["yes"] = False
        outcomes = await queue_driver.drain("retry")
        assert sorted((o.job_id, o.status, o.attempt) for o in outcomes) == sorted(
            (ref.id, "completed", 1) for ref in refs
        )

    async def test_q9_obliterate_refuses_active_jobs_unless_forced(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: obliterate removes everything; with a job running it refuses unless ``force``."""
        queue = queue_driver.queue
        started, release = asyncio.Event(), asyncio.Event()

        async def blocking(job: Job) -> Any:
            started.set()
            await release.wait()
            return None

        worker = queue.consume("doomed", blocking)
        await queue.enqueue("doomed", "first", {})
        await queue.enqueue("doomed", "second", {}, options=JobOptions(delay=60))
        await worker.start()
        try:
            await wait_for_event(started, "the first job to start")
            with pytest.raises(PortsideError, match="force"):
                await queue.obliterate("doomed")
            await queue.obliterate("doomed", force=True)
            counts = await queue.counts("doomed")
            assert counts.depth == counts.completed == counts.failed == 0
        finally:
            release.set()
            await worker.close(grace=5)
        await queue.obliterate("doomed")
        assert (await queue.counts("doomed")).depth == 0

    async def test_q11_upsert_schedule_is_idempotent(self, queue_driver: QueueDriver) -> None:
        """Q11: upserting the same scheduler twice keeps one, its first job runs at once, and
        removing it is reported once."""
        queue = queue_driver.queue
        schedule = Schedule(scheduler_id="sync-5m", name="sync", data={"src": "a"}, every=300)
        await queue.upsert_schedule("scheduled", schedule)
        await queue.upsert_schedule("scheduled", schedule)
        assert [s.scheduler_id for s in await queue.list_schedules("scheduled")] == ["sync-5m"]
        queue.consume("scheduled", _done)
        outcomes = await queue_driver.drain("scheduled")
        assert [(o.name, o.status) for o in outcomes] == [("sync", "completed")]
        assert await queue.remove_schedule("scheduled", "sync-5m") is True
        assert await queue.remove_schedule("scheduled", "sync-5m") is False
        assert await queue.list_schedules("scheduled") == []

    @pytest.mark.parametrize(
        ("options", "field"),
        [
            (JobOptions(job_id="fixed"), "schedule.options.job_id"),
            (JobOptions(dedupe_key="once"), "schedule.options.dedupe_key"),
            (JobOptions(delay=30), "schedule.options.delay"),
        ],
    )
    async def test_q11_options_a_scheduler_decides_itself_are_refused(
        self, queue_driver: QueueDriver, options: JobOptions, field: str
    ) -> None:
        """Q11: a scheduler names, dedupes and times its own jobs: a schedule whose options set
        ``job_id``, ``dedupe_key`` or ``delay`` names that option and nothing is stored."""
        queue = queue_driver.queue
        schedule = Schedule(scheduler_id="s", name="n", every=60, options=options)
        with expect_invalid(field):
            await queue.upsert_schedule("refused", schedule)
        assert await queue.list_schedules("refused") == []
        assert (await queue.counts("refused")).depth == 0

    async def test_e2_server_info_says_the_queue_server_does_not_evict(
        self, queue_driver: QueueDriver
    ) -> None:
        """E2: the server behind a test queue names itself, keeps jobs under ``noeviction``
        (a fake never evicts), and reports its memory limit as 0 (none) or more bytes."""
        info = await queue_driver.queue.server_info()
        assert isinstance(info, ServerInfo)
        assert info.backend
        assert info.maxmemory_policy == "noeviction", info
        assert info.maxmemory is not None
        assert info.maxmemory >= 0
        assert info.unreadable is None
