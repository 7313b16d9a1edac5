"""The history contract suite: run history (A3) and dead letters (A4) on any HistoryPort."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from portside.ports import (
    FinishedRun,
    HistoryPort,
    NewDeadLetter,
    RunFinish,
    RunMode,
    RunStart,
    ValidationError,
)
from portside.ports.history import LOST_RUN_ERROR, LOST_RUN_MESSAGE

__all__ = ["T0", "HistoryContract", "dead", "start"]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RunStatusEnded = Literal["completed", "retrying", "failed"]


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

    async def test_ops1_runs_are_filtered_by_status_mode_keys_and_time_and_paged(
        self, history: HistoryPort
    ) -> None:
        """OPS1: ``list_runs`` filters by status, run mode, business keys and a started-at
        range (inclusive start, exclusive end), and pages with offset and limit."""
        for i in range(6):
            mode: RunMode = "scheduled" if i % 2 else "manual"
            await history.record_run(
                FinishedRun(
                    job_id=f"k{i}",
                    queue="q",
                    name="job",
                    attempt=1,
                    run_mode=mode,
                    started_at=T0 + timedelta(minutes=i),
                    keys={"organizationId": f"org-{i % 3}", "date": "2026-01-01"},
                    status="failed" if i == 4 else "completed",
                    finished_at=T0 + timedelta(minutes=i, seconds=1),
                    failure_kind="permanent" if i == 4 else None,
                )
            )

        async def ids(**filters: Any) -> list[str]:
            return [run.job_id for run in await history.list_runs(**filters)]

        assert await ids() == ["k5", "k4", "k3", "k2", "k1", "k0"]
        assert await ids(status="failed") == ["k4"]
        assert await ids(run_mode="scheduled") == ["k5", "k3", "k1"]
        assert await ids(keys={"organizationId": "org-1"}) == ["k4", "k1"]
        assert await ids(keys={"organizationId": "org-1", "date": "2026-01-01"}) == ["k4", "k1"]
        assert await ids(keys={"organizationId": "org-1", "date": "2026-01-02"}) == []
        assert await ids(
            started_after=T0 + timedelta(minutes=1), started_before=T0 + timedelta(minutes=3)
        ) == ["k2", "k1"]
        assert await ids(offset=2, limit=3) == ["k3", "k2", "k1"]
        assert await ids(offset=6) == []
        (run,) = await history.list_runs(job_id="k4")
        assert run.keys == {"organizationId": "org-1", "date": "2026-01-01"}
        started = await history.record_start(
            RunStart(
                job_id="k9",
                queue="q",
                name="job",
                attempt=1,
                run_mode="backfill",
                started_at=T0,
                keys={"integrationId": "int-7"},
            )
        )
        assert started.keys == {"integrationId": "int-7"}
        assert await ids(keys={"integrationId": "int-7"}, status="running") == ["k9"]

    async def test_ops1_run_buckets_count_finished_attempts_per_minute(
        self, history: HistoryPort
    ) -> None:
        """OPS1: ``run_buckets`` counts finished attempts per queue and minute by outcome."""
        outcomes: list[tuple[str, int, RunStatusEnded]] = [
            ("q", 0, "completed"),
            ("q", 10, "completed"),
            ("q", 50, "failed"),
            ("q", 70, "retrying"),
            ("other", 5, "completed"),
        ]
        for queue, second, status in outcomes:
            run = await history.record_start(start(f"b{second}", queue=queue, at=T0))
            await history.record_finish(
                run.id, RunFinish(status=status, finished_at=T0 + timedelta(seconds=second))
            )
        buckets = await history.run_buckets(T0)
        counted = [(b.queue, b.start, b.completed, b.failed, b.retrying) for b in buckets]
        assert counted == [
            ("other", T0, 1, 0, 0),
            ("q", T0, 2, 1, 0),
            ("q", T0 + timedelta(minutes=1), 0, 0, 1),
        ]
        only_q = await history.run_buckets(T0 + timedelta(seconds=60), queue="q")
        assert [(b.start, b.finished) for b in only_q] == [(T0 + timedelta(minutes=1), 1)]

    async def test_ops1_dead_letters_are_filtered_and_paged(self, history: HistoryPort) -> None:
        """OPS1: ``list_failures`` filters by job name, failure kind and a failed-at range,
        and pages with offset and limit."""
        for i in range(4):
            letter = dead(f"d{i}", T0 + timedelta(hours=i), queue="q")
            if i == 3:
                letter = letter.model_copy(update={"name": "other", "failure_kind": "transient"})
            await history.add_failure(letter)

        async def ids(**filters: Any) -> list[str]:
            return [letter.job_id for letter in await history.list_failures(**filters)]

        assert await ids() == ["d3", "d2", "d1", "d0"]
        assert await ids(name="other") == ["d3"]
        assert await ids(failure_kind="permanent") == ["d2", "d1", "d0"]
        assert await ids(
            failed_after=T0 + timedelta(hours=1), failed_before=T0 + timedelta(hours=3)
        ) == ["d2", "d1"]
        assert await ids(offset=1, limit=2) == ["d2", "d1"]
