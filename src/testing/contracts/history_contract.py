"""The history contract suite: run history (A3) and dead letters (A4) on any HistoryPort."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.ports import (
    FinishedRun,
    HistoryPort,
    NewDeadLetter,
    RunFinish,
    RunStart,
    ValidationError,
)
from portside.ports.history import LOST_RUN_ERROR, LOST_RUN_MESSAGE

__all__ = ["T0", "HistoryContract", "dead", "start"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def start(job_id: str, attempt: int = 1, *, queue: str = "q", at: datetime = T0) -> RunStart:
    """A backfill attempt of job ``job_id`` that started at ``at``."""
    return RunStart(
        job_id=job_id, queue=queue, name="job", attempt=attempt, run_mode="backfill", started_at=at
    )


def dead(job_id: str, failed_at: datetime, *, queue: str = "q") -> NewDeadLetter:
    """A dead letter of a permanently failed job."""
    return NewDeadLetter(
        queue=queue,
        job_id=job_id,
        name="job",
        data={"organizationId": "org-1", "_portside": {"mode": "manual"}},
        error_class="SourceAuthError",
        error_message="invalid token",
        failure_kind="permanent",
        attempts_made=1,
        failed_at=failed_at,
    )


class HistoryContract:
    """A3, A4. Needs a ``history`` fixture yielding the ``HistoryPort`` under test, empty."""

    pytestmark = pytest.mark.asyncio

    async def test_a3_runs_round_trip(self, history: HistoryPort) -> None:
        """A3: record_start/record_finish/get/list with filters, newest first; queue stats."""
        first = await history.record_start(start("j1", 1))
        assert first.status == "running"
        assert first.finished_at is None
        closed = await history.record_finish(
            first.id,
            RunFinish(
                status="retrying",
                finished_at=T0 + timedelta(seconds=2),
                failure_kind="transient",
                error_class="SourceUnavailableError",
                error_message="503",
            ),
        )
        assert (closed.status, closed.failure_kind, closed.duration) == (
            "retrying",
            "transient",
            2.0,
        )
        second = await history.record_start(start("j1", 2, at=T0 + timedelta(seconds=10)))
        await history.record_finish(
            second.id,
            RunFinish(
                status="completed",
                finished_at=T0 + timedelta(seconds=11),
                result={"rows": 3, "ok": True},
            ),
        )
        await history.record_start(start("j2", queue="other", at=T0 + timedelta(seconds=20)))

        runs = await history.list_runs(job_id="j1")
        assert [(r.attempt, r.status, r.run_mode) for r in runs] == [
            (2, "completed", "backfill"),
            (1, "retrying", "backfill"),
        ]
        assert runs[0].result == {"rows": 3, "ok": True}
        assert [r.job_id for r in await history.list_runs(queue="other")] == ["j2"]
        assert len(await history.list_runs(limit=2)) == 2
        assert await history.get_run(second.id) == runs[0]
        assert await history.get_run("999999") is None
        assert await history.get_run("not-an-id") is None
        with pytest.raises(ValidationError, match="no run with id"):
            await history.record_finish("424242", RunFinish(status="completed", finished_at=T0))

        stats = {s.queue: s for s in await history.queue_stats(T0)}
        assert (stats["q"].finished, stats["q"].completed, stats["q"].retrying) == (2, 1, 1)
        assert stats["q"].failure_rate == 0.5
        assert stats["q"].mean_duration == pytest.approx(1.5)
        assert "other" not in stats  # still running

    async def test_a4_dead_letters_are_stored_retried_and_purged(
        self, history: HistoryPort
    ) -> None:
        """A4: add/list/get/mark_retried/purge with 30-day default retention."""
        now = T0 + timedelta(days=40)
        old = await history.add_failure(dead("old", now - timedelta(days=31)))
        recent = await history.add_failure(dead("recent", now - timedelta(days=1), queue="q2"))

        assert [f.job_id for f in await history.list_failures()] == ["recent", "old"]
        assert [f.job_id for f in await history.list_failures(queue="q2")] == ["recent"]
        fetched = await history.get_failure(old.id)
        assert fetched is not None
        assert fetched.data["organizationId"] == "org-1"
        assert fetched.error == "SourceAuthError: invalid token"
        assert await history.get_failure("no-such-id") is None

        marked = await history.mark_retried(recent.id, retry_job_id="recent", retried_at=now)
        assert marked is not None
        assert marked.retried_at == now
        assert marked.retry_job_id == "recent"
        assert [f.job_id for f in await history.list_failures()] == ["old"]
        assert len(await history.list_failures(include_retried=True)) == 2
        assert await history.mark_retried("no-such-id", retry_job_id="x", retried_at=now) is None

        assert await history.purge_failures(now=now) == 1
        assert [f.job_id for f in await history.list_failures(include_retried=True)] == ["recent"]
        assert await history.purge_failures(timedelta(hours=1), now=now) == 1

    async def test_a3_finished_runs_past_retention_are_purged(self, history: HistoryPort) -> None:
        """A3: purge_runs deletes finished attempts past the cutoff, never running ones."""
        now = T0 + timedelta(days=40)
        stale_start = now - timedelta(days=35)

        async def finished(job_id: str, status: str, ended: datetime) -> str:
            run = await history.record_start(start(job_id, at=stale_start))
            finish = RunFinish.model_validate({"status": status, "finished_at": ended})
            return (await history.record_finish(run.id, finish)).id

        old_ok = await finished("old-ok", "completed", now - timedelta(days=31))
        old_retry = await finished("old-retry", "retrying", now - timedelta(days=30, seconds=1))
        old_failed = await finished("old-failed", "failed", now - timedelta(days=33))
        recent = await finished("recent", "completed", now - timedelta(days=29))
        running = (await history.record_start(start("still-running", at=stale_start))).id

        assert await history.purge_runs(now=now) == 3
        for gone in (old_ok, old_retry, old_failed):
            assert await history.get_run(gone) is None
        assert {r.job_id for r in await history.list_runs()} == {"recent", "still-running"}
        assert await history.purge_runs(now=now) == 0

        assert await history.purge_runs(timedelta(0), now=now) == 1
        assert await history.get_run(recent) is None
        kept = await history.get_run(running)
        assert kept is not None
        assert kept.status == "running"

    async def test_a3_record_run_stores_an_ended_attempt_in_one_write(
        self, history: HistoryPort
    ) -> None:
        """A3: ``record_run`` stores an attempt that ended, with its outcome and timings; it
        counts in the queue stats like one closed with ``record_finish``."""
        ended = T0 + timedelta(milliseconds=250)
        await history.record_run(
            FinishedRun(
                **start("j1").model_dump(),
                status="completed",
                finished_at=ended,
                result={"rows": 3},
            )
        )
        await history.record_run(
            FinishedRun(
                **start("j2", 2).model_dump(),
                status="retrying",
                finished_at=ended,
                failure_kind="transient",
                error_class="SourceUnavailableError",
                error_message="503",
            )
        )
        runs = {run.job_id: run for run in await history.list_runs()}
        assert (runs["j1"].status, runs["j1"].result, runs["j1"].duration) == (
            "completed",
            {"rows": 3},
            0.25,
        )
        assert (runs["j2"].attempt, runs["j2"].status, runs["j2"].error_class) == (
            2,
            "retrying",
            "SourceUnavailableError",
        )
        assert runs["j1"].run_mode == "backfill"
        assert await history.get_run(runs["j1"].id) == runs["j1"]
        (stats,) = await history.queue_stats(T0)
        assert (stats.finished, stats.completed, stats.retrying) == (2, 1, 1)

    async def test_a3_a_finished_run_cannot_end_before_it_starts(self) -> None:
        """A3: a run row that ends before it starts is refused naming the field."""
        with pytest.raises(ValidationError, match="finished_at is before started_at"):
            FinishedRun(
                **start("j1").model_dump(), status="completed", finished_at=T0 - timedelta(1)
            )

    async def test_q15_running_attempts_nobody_vouches_for_are_closed_as_lost(
        self, history: HistoryPort
    ) -> None:
        """Q15: a running attempt whose worker stopped vouching for it (``touch_runs``) is
        closed as ``lost`` once ``stale_after`` passed; one vouched for stays running; a lost
        attempt counts as a failure in the stats, finishing it later records the truth, and
        ``purge_runs`` deletes lost rows like other finished ones."""
        dead = await history.record_start(start("dead"))
        alive = await history.record_start(start("alive"))
        fresh = await history.record_start(start("fresh", at=T0 + timedelta(seconds=50)))
        await history.touch_runs([alive.id, "no-such-id", "424242"], at=T0 + timedelta(seconds=40))
        now = T0 + timedelta(seconds=70)

        assert await history.close_lost_runs(timedelta(seconds=60), now=now) == 1
        lost = await history.get_run(dead.id)
        assert lost is not None
        assert (lost.status, lost.finished_at, lost.failure_kind) == ("lost", now, "transient")
        assert lost.error_class == LOST_RUN_ERROR
        assert lost.error_message == LOST_RUN_MESSAGE
        for kept in (alive, fresh):
            row = await history.get_run(kept.id)
            assert row is not None
            assert row.status == "running"
        touched = await history.get_run(alive.id)
        assert touched is not None
        assert touched.seen_at == T0 + timedelta(seconds=40)
        assert await history.close_lost_runs(timedelta(seconds=60), now=now) == 0

        (stats,) = await history.queue_stats(T0)
        assert (stats.finished, stats.lost, stats.failure_rate) == (1, 1, 1.0)

        later = now + timedelta(seconds=60)
        assert await history.close_lost_runs(timedelta(seconds=60), now=later) == 2
        truth = await history.record_finish(
            alive.id, RunFinish(status="completed", finished_at=now + timedelta(seconds=61))
        )
        assert truth.status == "completed"

        assert await history.purge_runs(timedelta(0), now=now + timedelta(days=1)) == 3
        assert await history.list_runs() == []
