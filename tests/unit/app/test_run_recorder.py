"""A3, Q15, Q16: one run-history write per attempt, running rows only for long attempts,
lost rows closed, abandoned jobs recorded, published outbox events purged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app import JobContext, Registry, WorkerRuntime, dispatch
from portside.app.attempts import AttemptRunner
from portside.app.logs import JsonFormatter, LogFields
from portside.app.metrics import WorkerMetrics
from portside.app.run_recorder import RunRecorder
from portside.infra import Infra
from portside.ports import JobStalledError, RunStart
from portside.ports.history import LOST_RUN_ERROR
from portside.testing import wait_for
from tests.unit.app.support import Captured, Item, item_job

MakeRuntime = Callable[..., WorkerRuntime]


class CountingHistory(InMemoryHistory):
    """Counts the writes the worker makes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    async def record_start(self, run: RunStart) -> Any:
        self.calls.append("record_start")
        return await super().record_start(run)

    async def record_finish(self, run_id: str, finish: Any) -> Any:
        self.calls.append("record_finish")
        return await super().record_finish(run_id, finish)

    async def record_run(self, run: Any) -> None:
        self.calls.append("record_run")
        await super().record_run(run)


async def _ok(payload: Item, ctx: JobContext) -> str:
    return payload.itemId


async def test_a3_a_short_attempt_is_written_once_when_it_ends(
    app_infra: Infra, fake_queue: InMemoryQueue, clock: VirtualClock
) -> None:
    """A3: an attempt shorter than ``running_row_after`` costs one write: its finished row."""
    history = CountingHistory(clock.datetime)
    registry = Registry([item_job(_ok)])
    runtime = WorkerRuntime(
        registry,
        Infra(queue=app_infra.queue, outbox=app_infra.outbox, history=history, name="t"),
        clock=clock.datetime,
        sample_interval=None,
        retention_interval=None,
    )
    async with runtime:
        ref = await dispatch(registry, fake_queue, "item", {"itemId": "i-1"})
        clock.advance(2)
        await fake_queue.drain("items")

    assert history.calls == ["record_run"]
    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.status, run.result, run.attempt, run.run_mode) == ("completed", "i-1", 1, "manual")
    assert run.started_at == run.finished_at


async def test_a3_a_long_attempt_gets_a_running_row_that_its_end_closes(
    app_infra: Infra, fake_queue: InMemoryQueue, clock: VirtualClock
) -> None:
    """A3: an attempt still running after ``running_row_after`` shows as ``running``; the
    worker vouches for it while it runs; its end closes that same row."""
    history = CountingHistory(clock.datetime)
    release = asyncio.Event()

    async def long(payload: Item, ctx: JobContext) -> str:
        await release.wait()
        return "done"

    registry = Registry([item_job(long)])
    infra = Infra(queue=app_infra.queue, outbox=app_infra.outbox, history=history, name="t")
    runtime = WorkerRuntime(
        registry,
        infra,
        clock=clock.datetime,
        sample_interval=None,
        retention_interval=None,
        running_row_after=0.0,
        lost_after=40.0,
    )
    async with runtime:
        ref = await dispatch(registry, fake_queue, "item", {"itemId": "i-2"})
        draining = asyncio.create_task(fake_queue.drain("items"))

        async def running() -> bool:
            return [run.status for run in await history.list_runs(job_id=ref.id)] == ["running"]

        await wait_for(running, timeout=5, message="a running row for the long attempt")
        clock.advance(30)
        await wait_for(
            lambda: history.calls.count("record_start") == 1, timeout=5, message="one start"
        )
        (row,) = await history.list_runs(job_id=ref.id)
        assert await runtime.close_lost_runs() == 0  # not stale: 30 s < lost_after
        release.set()
        await draining

    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.id, run.status, run.result) == (row.id, "completed", "done")
    assert "record_run" not in history.calls
    assert history.calls == ["record_start", "record_finish"]


async def test_a3_the_recorder_vouches_only_for_attempts_with_a_running_row(
    clock: VirtualClock, history: InMemoryHistory
) -> None:
    """A3, Q15: ``vouch`` touches the running rows of attempts in flight, and nothing else."""
    recorder = RunRecorder(history, WorkerMetrics(), clock.datetime, running_row_after=0.0)
    job = _StubJob()
    attempt = recorder.begin(job, "manual", LogFields(job_id=job.id))
    assert await recorder.vouch() == 0
    assert recorder.write_running_rows() == 1
    assert recorder.write_running_rows() == 0
    await recorder.idle()
    clock.advance(5)
    assert await recorder.vouch() == 1
    (row,) = await history.list_runs()
    assert row.seen_at == clock.datetime()
    assert await recorder.finish(attempt, "completed", result=1)
    assert await recorder.vouch() == 0
    assert recorder.in_flight() == 0


class _StubJob:
    id = "j-1"
    queue = "items"
    name = "item"
    attempt = 1
    max_attempts = 3
    data: dict[str, Any] = {"itemId": "i"}  # noqa: RUF012 - read-only stub data
    raw_data = '{"itemId": "i"}'

    async def update_progress(self, progress: Any) -> None:
        return None

    async def log(self, line: str) -> None:
        return None

    async def children_values(self) -> dict[str, Any]:
        return {}


async def test_q15_the_runtime_closes_rows_of_dead_workers_as_lost(
    history: InMemoryHistory, clock: VirtualClock, make_runtime: MakeRuntime, captured: Captured
) -> None:
    """Q15: a running row nobody vouched for since ``lost_after`` is closed as ``lost`` (and
    logged); a fresher one stays."""
    started = clock.datetime()
    dead = await history.record_start(
        RunStart(
            job_id="dead",
            queue="items",
            name="item",
            attempt=1,
            run_mode="manual",
            started_at=started,
        )
    )
    clock.advance(50)
    fresh = await history.record_start(
        RunStart(
            job_id="fresh",
            queue="items",
            name="item",
            attempt=1,
            run_mode="manual",
            started_at=clock.datetime(),
        )
    )
    clock.advance(20)
    runtime = make_runtime(Registry([item_job(_ok)]), lost_after=60.0)
    async with runtime:
        assert await runtime.close_lost_runs() == 1

    lost = await history.get_run(dead.id)
    kept = await history.get_run(fresh.id)
    assert lost is not None
    assert kept is not None
    assert (lost.status, lost.error_class) == ("lost", LOST_RUN_ERROR)
    assert kept.status == "running"
    lines = [json.loads(JsonFormatter().format(record)) for record in captured.records]
    assert {"event": "job_runs.lost", "closed": 1}.items() <= next(
        line for line in lines if line["event"] == "job_runs.lost"
    ).items()


async def test_q15_the_runtime_purges_published_outbox_events_past_retention(
    app_infra: Infra, clock: VirtualClock, make_runtime: MakeRuntime
) -> None:
    """Q15: published events older than ``outbox_retention`` go; newer and unpublished stay."""
    outbox = app_infra.outbox
    assert isinstance(outbox, InMemoryOutbox)
    async with outbox.transaction() as tx:
        await outbox.append(tx, "old", "step", {})
    await outbox.drain_once()
    clock.advance(8 * 86400)
    async with outbox.transaction() as tx:
        await outbox.append(tx, "new", "step", {})
    await outbox.drain_once()
    async with outbox.transaction() as tx:
        await outbox.append(tx, "unpublished", "step", {})

    runtime = make_runtime(Registry([item_job(_ok)]), outbox_retention=timedelta(days=7))
    assert await runtime.purge_outbox() == 1
    assert [event.stream for event in outbox.events()] == ["new", "unpublished"]
    off = make_runtime(Registry([item_job(_ok)]), outbox_retention=None)
    assert await off.purge_outbox() == 0


async def test_q16_a_job_abandoned_by_the_queue_gets_a_closed_row_and_a_dead_letter(
    app_infra: Infra, history: InMemoryHistory, clock: VirtualClock, captured: Captured
) -> None:
    """Q16: a job the queue fails without an attempt (stalled too often) ends like every final
    failure: a failed run row, a dead letter with reason, attempts and data, the job.failed
    and job.dead_lettered lines and the final-failure metric."""
    metrics = WorkerMetrics()
    runner = AttemptRunner(Registry([item_job(_ok)]), app_infra, history, metrics, clock.datetime)
    job = _StubJob()
    job.data = {"itemId": "i-9", "_portside": {"mode": "backfill"}}
    await runner.abandoned(job, JobStalledError("job stalled more than allowable limit"))

    (run,) = await history.list_runs(job_id="j-1")
    assert (run.status, run.run_mode, run.failure_kind) == ("failed", "backfill", "transient")
    assert run.error_class == "JobStalledError"
    (letter,) = await history.list_failures()
    assert letter.error == "JobStalledError: job stalled more than allowable limit"
    assert (letter.attempts_made, letter.data["itemId"]) == (1, "i-9")
    events = [record.getMessage() for record in captured.records]
    assert events == ["job.failed", "job.dead_lettered"]
    failed = metrics.registry.get_sample_value(
        "portside_attempts_failed_total",
        {"queue": "items", "job": "item", "classification": "transient", "final": "true"},
    )
    assert failed == 1.0
