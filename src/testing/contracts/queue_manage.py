"""Queue contract, part 6: managing single jobs (Q9): list, remove, promote, delay, data, clean."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from portside.ports import (
    FlowJob,
    Job,
    JobNotFoundError,
    JobOptions,
    JobStateError,
    NewJob,
    PermanentError,
    Schedule,
)
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.contracts.support import expect_invalid, wait_for_event

__all__ = ["ManageContract"]


async def _echo(job: Job) -> Any:
    return job.data


async def _fails_when_asked(job: Job) -> Any:
    if job.data.get("fail"):
        raise PermanentError("asked to fail")
    return job.data


class ManageContract:
    """Q9 for single jobs. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_q9_list_jobs_pages_through_a_state_newest_first(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: ``list_jobs`` pages through the jobs of a state, newest first by default and
        in run order with ``ascending``; ``total`` counts them all; prioritized jobs come
        after plain ones in run order, lower priority numbers first."""
        queue = queue_driver.queue
        refs = await queue.enqueue_bulk(
            "listed", [NewJob(name=f"j{i}", data={"i": i}) for i in range(5)]
        )
        urgent = await queue.enqueue("listed", "urgent", {}, options=JobOptions(priority=1))
        later = await queue.enqueue("listed", "later", {}, options=JobOptions(priority=7))
        run_order = [*(ref.id for ref in refs), urgent.id, later.id]
        page = await queue.list_jobs("listed", "waiting", limit=3)
        assert page.total == 7
        assert [job.id for job in page.jobs] == run_order[::-1][:3]
        assert {job.state for job in page.jobs} == {"waiting"}
        rest = await queue.list_jobs("listed", ["waiting"], offset=3, limit=10)
        assert [job.id for job in rest.jobs] == run_order[::-1][3:]
        ascending = await queue.list_jobs("listed", "waiting", offset=1, limit=4, ascending=True)
        assert [job.id for job in ascending.jobs] == run_order[1:5]
        queue.consume("listed", _echo)
        outcomes = await queue_driver.drain("listed")
        assert [o.job_id for o in outcomes] == run_order
        done = await queue.list_jobs("listed", "completed", limit=2, ascending=True)
        assert [job.id for job in done.jobs] == run_order[:2]
        assert done.jobs[0].result == {"i": 0}
        assert (await queue.list_jobs("listed", "waiting")).total == 0

    async def test_q9_list_jobs_of_several_states_goes_state_by_state(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: several states are listed in the order given; delayed jobs soonest first with
        ``ascending``; a paused queue lists its waiting jobs as ``paused``."""
        queue = queue_driver.queue
        soon = await queue.enqueue("mixed", "soon", {}, options=JobOptions(delay=10))
        far = await queue.enqueue("mixed", "far", {}, options=JobOptions(delay=100))
        ready = await queue.enqueue("mixed", "ready", {})
        page = await queue.list_jobs("mixed", ["delayed", "waiting"], ascending=True)
        assert [(job.id, job.state) for job in page.jobs] == [
            (soon.id, "delayed"),
            (far.id, "delayed"),
            (ready.id, "waiting"),
        ]
        assert page.total == 3
        await queue.pause("mixed")
        assert (await queue.list_jobs("mixed", "waiting")).jobs == []
        paused = await queue.list_jobs("mixed", "paused")
        assert [(job.id, job.state) for job in paused.jobs] == [(ready.id, "paused")]

    async def test_q9_list_jobs_refuses_unknown_states_and_bad_pages(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: a state jobs cannot be listed in, an empty list, a negative offset or a limit
        out of 1-1000 name their argument."""
        queue = queue_driver.queue
        with expect_invalid("states", "unknown"):
            await queue.list_jobs("pages", "unknown")
        with expect_invalid("states"):
            await queue.list_jobs("pages", cast(Any, "sleeping"))
        with expect_invalid("states"):
            await queue.list_jobs("pages", [])
        with expect_invalid("offset"):
            await queue.list_jobs("pages", "waiting", offset=-1)
        with expect_invalid("limit", "1000"):
            await queue.list_jobs("pages", "waiting", limit=1001)

    async def test_q9_remove_job_removes_it_from_any_state_and_names_unknown_jobs(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: ``remove_job`` removes a waiting, delayed, completed or failed job; an unknown
        id raises ``JobNotFoundError`` naming the job."""
        queue = queue_driver.queue
        waiting = await queue.enqueue("removals", "w", {})
        delayed = await queue.enqueue("removals", "d", {}, options=JobOptions(delay=60))
        done = await queue.enqueue("removals", "c", {})
        failed = await queue.enqueue("removals", "f", {"fail": True})
        queue.consume("removals", _fails_when_asked)
        await queue.remove_job("removals", waiting.id)
        await queue_driver.drain("removals")
        for ref in (delayed, done, failed):
            await queue.remove_job("removals", ref.id)
            assert await queue.get_job("removals", ref.id) is None
        counts = await queue.counts("removals")
        assert (counts.depth, counts.completed, counts.failed) == (0, 0, 0)
        with pytest.raises(JobNotFoundError, match=waiting.id) as info:
            await queue.remove_job("removals", waiting.id)
        assert (info.value.field, info.value.queue) == ("job_id", "removals")

    async def test_q9_remove_job_refuses_an_active_job_unless_forced(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: removing an active job raises a wrong-state error naming ``force``; with
        ``force`` it is removed and its worker's result is dropped."""
        queue = queue_driver.queue
        started, release = asyncio.Event(), asyncio.Event()

        async def blocking(job: Job) -> Any:
            started.set()
            await release.wait()
            return "too late"

        ref = await queue.enqueue("busy", "long", {})
        worker = queue.consume("busy", blocking)
        await worker.start()
        try:
            await wait_for_event(started, "the job to start")
            with pytest.raises(JobStateError, match="active") as info:
                await queue.remove_job("busy", ref.id)
            assert (info.value.field, info.value.state) == ("force", "active")
            await queue.remove_job("busy", ref.id, force=True)
            assert await queue.get_job("busy", ref.id) is None
        finally:
            release.set()
            await worker.close(grace=5)
        assert await queue.get_job("busy", ref.id) is None
        assert (await queue.counts("busy")).completed == 0

    async def test_q9_remove_job_takes_children_along_or_frees_the_parent(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: removing a parent removes its children too; removing a parent's last pending
        child lets the parent run."""
        queue = queue_driver.queue
        doomed = await queue.add_flow(
            FlowJob(queue="trees", name="p", children=(FlowJob(queue="twigs", name="c"),))
        )
        await queue.remove_job("trees", doomed.job.id)
        assert await queue.get_job("twigs", doomed.children[0].job.id) is None
        kept = await queue.add_flow(
            FlowJob(queue="trees", name="p2", children=(FlowJob(queue="twigs", name="c2"),))
        )
        await queue.remove_job("twigs", kept.children[0].job.id)
        parent = await queue.get_job("trees", kept.job.id)
        assert parent is not None
        assert parent.state == "waiting"
        queue.consume("trees", _echo)
        assert [o.name for o in await queue_driver.drain("trees")] == ["p2"]

    async def test_q9_removing_a_deduplicated_job_frees_its_dedupe_key(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: a removed job no longer deduplicates: the same ``dedupe_key`` adds a new job."""
        queue = queue_driver.queue
        options = JobOptions(dedupe_key="sync-user-7", dedupe_ttl=600)
        first = await queue.enqueue("dedupe-removed", "sync", {}, options=options)
        again = await queue.enqueue("dedupe-removed", "sync", {}, options=options)
        assert again.id == first.id
        await queue.remove_job("dedupe-removed", first.id)
        fresh = await queue.enqueue("dedupe-removed", "sync", {}, options=options)
        assert fresh.id != first.id
        assert (await queue.counts("dedupe-removed")).waiting == 1

    async def test_q9_a_schedulers_next_job_is_removed_with_its_schedule(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: the upcoming job of a job scheduler is refused by ``remove_job``; the error
        points to ``remove_schedule``."""
        queue = queue_driver.queue
        schedule = Schedule(scheduler_id="hourly", name="tick", every=3600)
        await queue.upsert_schedule("ticks", schedule)
        page = await queue.list_jobs("ticks", ["waiting", "delayed"])
        assert len(page.jobs) == 1
        with pytest.raises(JobStateError, match="remove_schedule"):
            await queue.remove_job("ticks", page.jobs[0].id)

    async def test_q9_promote_job_makes_a_delayed_job_wait_now(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: ``promote_job`` runs a delayed job without waiting for its delay (a
        prioritized one by its priority); a job that is not delayed is a wrong-state error."""
        queue = queue_driver.queue
        plain = await queue.enqueue("promoted", "plain", {})
        delayed = await queue.enqueue("promoted", "later", {}, options=JobOptions(delay=300))
        urgent = await queue.enqueue(
            "promoted", "urgent", {}, options=JobOptions(delay=300, priority=2)
        )
        await queue.promote_job("promoted", delayed.id)
        await queue.promote_job("promoted", urgent.id)
        info = await queue.get_job("promoted", delayed.id)
        assert info is not None
        assert (info.state, info.delay) == ("waiting", 0)
        with pytest.raises(JobStateError, match="not delayed") as refused:
            await queue.promote_job("promoted", plain.id)
        assert refused.value.state == "waiting"
        with pytest.raises(JobNotFoundError):
            await queue.promote_job("promoted", "no-such-job")
        queue.consume("promoted", _echo)
        outcomes = await queue_driver.drain("promoted")
        assert [o.name for o in outcomes] == ["plain", "later", "urgent"]

    async def test_q9_change_delay_moves_a_delayed_jobs_due_time(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: ``change_delay`` makes a delayed job due that many seconds from now; a job
        that is not delayed is a wrong-state error; the delay must be above 0."""
        queue = queue_driver.queue
        sooner = await queue.enqueue("retimed", "sooner", {}, options=JobOptions(delay=600))
        later = await queue.enqueue("retimed", "later", {}, options=JobOptions(delay=1))
        await queue.change_delay("retimed", sooner.id, 1)
        await queue.change_delay("retimed", later.id, 600)
        info = await queue.get_job("retimed", later.id)
        assert info is not None
        assert (info.state, info.delay) == ("delayed", 600)
        queue.consume("retimed", _echo)
        await queue_driver.advance(1.5)
        assert [o.name for o in await queue_driver.drain("retimed")] == ["sooner"]
        with pytest.raises(JobStateError, match="completed"):
            await queue.change_delay("retimed", sooner.id, 5)
        with expect_invalid("delay"):
            await queue.change_delay("retimed", later.id, 0)
        with pytest.raises(JobNotFoundError):
            await queue.change_delay("retimed", "no-such-job", 5)

    async def test_q9_update_data_is_what_later_attempts_read(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: ``update_data`` replaces the payload (checked like an enqueued one)."""
        queue = queue_driver.queue
        ref = await queue.enqueue("edited", "send", {"to": "old@example.com"})
        await queue.update_data("edited", ref.id, {"to": "new@example.com"})
        with expect_invalid("data.bad"):
            await queue.update_data("edited", ref.id, {"bad": float("nan")})
        with pytest.raises(JobNotFoundError):
            await queue.update_data("edited", "no-such-job", {})
        queue.consume("edited", _echo)
        outcomes = await queue_driver.drain("edited")
        assert [o.result for o in outcomes] == [{"to": "new@example.com"}]

    async def test_q9_clean_removes_finished_jobs_older_than_the_grace(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q9: ``clean`` removes completed (or failed) jobs that finished at least ``grace``
        seconds ago, oldest first, at most ``limit``, and returns their ids."""
        queue = queue_driver.queue
        done = await queue.enqueue_bulk("cleaned", [NewJob(name="ok", data={}) for _ in range(3)])
        failed = await queue.enqueue("cleaned", "bad", {"fail": True})
        queue.consume("cleaned", _fails_when_asked)
        await queue_driver.drain("cleaned")
        assert await queue.clean("cleaned", 3600) == []
        first = await queue.clean("cleaned", 0, limit=2)
        assert first == [ref.id for ref in done[:2]]
        assert await queue.clean("cleaned", 0) == [done[2].id]
        assert await queue.clean("cleaned", 0, state="failed") == [failed.id]
        counts = await queue.counts("cleaned")
        assert (counts.completed, counts.failed) == (0, 0)
        with expect_invalid("state", "purge"):
            await queue.clean("cleaned", 0, state=cast(Any, "waiting"))
        with expect_invalid("grace"):
            await queue.clean("cleaned", -1)
