"""A2, A3, A4, Q2, Q4, Q5, Q10: the worker runtime on the in-memory fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app import (
    JobContext,
    Registry,
    UnknownQueueError,
    WorkerRuntime,
    dispatch,
    plan_backfill,
)
from portside.app.logs import JsonFormatter
from portside.infra import Infra
from portside.ports import (
    BackendUnavailableError,
    ConfigurationError,
    PermanentError,
    TransientError,
)
from tests.unit.app.support import Captured, Item, item_job

MakeRuntime = Callable[..., WorkerRuntime]


class TokenRevoked(Exception):
    """A source error the registry maps to permanent."""


async def ok(payload: Item, ctx: JobContext) -> dict[str, Any]:
    return {"itemId": payload.itemId, "doubled": payload.value * 2}


async def test_a3_completed_attempt_is_recorded_with_result_and_run_mode(
    app_infra: Infra, history: InMemoryHistory, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    registry = Registry([item_job(ok)])
    async with make_runtime(registry) as runtime:
        ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-1", "value": 2})
        outcomes = await fake_queue.drain("items")

    assert [o.status for o in outcomes] == ["completed"]
    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.queue, run.name, run.attempt, run.run_mode, run.status) == (
        "items",
        "item",
        1,
        "manual",
        "completed",
    )
    assert run.result == {"itemId": "i-1", "doubled": 4}
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at
    info = await app_infra.queue.get_job("items", ref.id)
    assert info is not None
    assert info.result == {"itemId": "i-1", "doubled": 4}
    sample = runtime.metrics.registry.get_sample_value(
        "portside_attempts_completed_total", {"queue": "items", "job": "item"}
    )
    assert sample == 1.0


async def test_q4_transient_errors_retry_with_backoff_then_dead_letter(
    app_infra: Infra, history: InMemoryHistory, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    async def flaky(payload: Item, ctx: JobContext) -> None:
        raise TransientError(f"upstream 503 on attempt {ctx.attempt}")

    registry = Registry([item_job(flaky)])
    async with make_runtime(registry) as runtime:
        ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-2"})
        first = await fake_queue.drain("items")
        await fake_queue.advance(1)
        second = await fake_queue.drain("items")
        await fake_queue.advance(5)
        third = await fake_queue.drain("items")

    assert [o.status for o in first + second + third] == ["retrying", "retrying", "failed"]
    runs = sorted(await history.list_runs(job_id=ref.id), key=lambda run: run.attempt)
    assert [(r.attempt, r.status, r.failure_kind) for r in runs] == [
        (1, "retrying", "transient"),
        (2, "retrying", "transient"),
        (3, "failed", "transient"),
    ]
    assert runs[2].error_class == "TransientError"
    assert runs[2].error_message == "upstream 503 on attempt 3"
    (failure,) = await history.list_failures()
    assert (failure.job_id, failure.queue, failure.name, failure.attempts_made) == (
        ref.id,
        "items",
        "item",
        3,
    )
    assert failure.data["itemId"] == "i-2"
    assert failure.error == "TransientError: upstream 503 on attempt 3"
    failed_final = runtime.metrics.registry.get_sample_value(
        "portside_attempts_failed_total",
        {"queue": "items", "job": "item", "classification": "transient", "final": "true"},
    )
    assert failed_final == 1.0


async def test_q4_permanent_error_fails_once_and_is_dead_lettered(
    app_infra: Infra, history: InMemoryHistory, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    async def revoked(payload: Item, ctx: JobContext) -> None:
        raise TokenRevoked("invalid token for integration xero-1")

    registry = Registry([item_job(revoked, classification={TokenRevoked: "permanent"})])
    async with make_runtime(registry):
        ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-3"})
        outcomes = await fake_queue.drain("items")
        await fake_queue.advance(60)
        later = await fake_queue.drain("items")

    assert [(o.status, o.failure_kind) for o in outcomes] == [("failed", "permanent")]
    assert later == []
    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.status, run.failure_kind, run.error_class) == (
        "failed",
        "permanent",
        "TokenRevoked",
    )
    (failure,) = await history.list_failures()
    assert (failure.attempts_made, failure.failure_kind) == (1, "permanent")
    info = await app_infra.queue.get_job("items", ref.id)
    assert info is not None
    assert info.state == "failed"
    assert info.attempts_made == 1


async def test_q2_invalid_payload_in_the_worker_fails_that_job_only(
    app_infra: Infra, history: InMemoryHistory, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    registry = Registry([item_job(ok)])
    async with make_runtime(registry):
        # Written by another producer, so it skipped enqueue-time validation.
        bad = await app_infra.queue.enqueue("items", "item", {"itemId": 7, "extra": True})
        good = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-4"})
        outcomes = await fake_queue.drain("items")

    by_id = {o.job_id: o for o in outcomes}
    assert (by_id[bad.id].status, by_id[bad.id].failure_kind) == ("failed", "permanent")
    assert by_id[good.id].status == "completed"
    (failure,) = await history.list_failures()
    assert failure.error_class == "InvalidPayloadError"
    assert "itemId: Input should be a valid string" in failure.error_message
    assert "extra: Extra inputs are not permitted" in failure.error_message
    (run,) = await history.list_runs(job_id=bad.id)
    assert run.run_mode == "manual"


async def test_unknown_job_name_on_a_queue_is_dead_lettered(
    app_infra: Infra, history: InMemoryHistory, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    registry = Registry([item_job(ok)])
    async with make_runtime(registry):
        ref = await app_infra.queue.enqueue("items", "retired-job", {"x": 1})
        (outcome,) = await fake_queue.drain("items")

    assert (outcome.status, outcome.failure_kind) == ("failed", "permanent")
    (failure,) = await history.list_failures()
    assert failure.job_id == ref.id
    assert "no job named 'retired-job' is registered for queue 'items'" in failure.error_message


async def test_q5_timed_out_attempt_is_a_transient_failure(
    app_infra: Infra, history: InMemoryHistory, fake_queue: InMemoryQueue, make_runtime: MakeRuntime
) -> None:
    never = asyncio.Event()

    async def hangs(payload: Item, ctx: JobContext) -> None:
        await never.wait()

    registry = Registry([item_job(hangs, timeout=0.05)])
    async with make_runtime(registry):
        ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-5"})
        (outcome,) = await fake_queue.drain("items")

    assert (outcome.status, outcome.failure_kind) == ("retrying", "transient")
    (run,) = await history.list_runs(job_id=ref.id)
    assert run.error_class == "JobTimeoutError"
    assert "ran longer than its 0.05 s timeout" in (run.error_message or "")


async def test_a3_backfill_and_scheduled_runs_carry_their_run_mode(
    app_infra: Infra,
    history: InMemoryHistory,
    fake_queue: InMemoryQueue,
    make_runtime: MakeRuntime,
) -> None:
    import datetime as dt

    from pydantic import BaseModel

    from portside.app import JobDefinition, JobSchedule, sync_schedules

    class Day(BaseModel):
        date: dt.date | None = None

    async def daily(payload: Day, ctx: JobContext) -> str:
        return str(payload.date)

    registry = Registry(
        [
            JobDefinition(
                name="daily",
                queue="days",
                payload=Day,
                handler=daily,
                date_field="date",
                schedule=JobSchedule(every=60),
            )
        ]
    )
    async with make_runtime(registry):
        plan = plan_backfill(registry, "daily", dt.date(2024, 1, 1), dt.date(2024, 1, 2))
        await plan.run(app_infra.queue)
        await fake_queue.drain("days")
        await sync_schedules(registry, app_infra.queue)
        await fake_queue.advance(60)
        await fake_queue.drain("days")

    modes = sorted((run.run_mode, run.result) for run in await history.list_runs())
    assert ("backfill", "2024-01-01") in modes
    assert ("backfill", "2024-01-02") in modes
    assert ("scheduled", "None") in modes


async def test_a2_logs_are_json_with_job_fields_and_business_keys(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    make_runtime: MakeRuntime,
    captured_debug: Captured,
) -> None:
    async def talks(payload: Item, ctx: JobContext) -> None:
        ctx.log("item.step", step=1)

    registry = Registry([item_job(talks)])
    async with make_runtime(registry):
        ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-6"})
        await fake_queue.drain("items")

    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record)) for record in captured_debug.records]
    events = {line["event"]: line for line in lines}
    assert {"worker.starting", "worker.ready", "job.started", "item.step", "job.completed"} <= set(
        events
    )
    for name in ("job.started", "item.step", "job.completed"):
        line = events[name]
        assert line["job_id"] == ref.id
        assert line["queue"] == "items"
        assert line["attempt"] == 1
        assert line["itemId"] == "i-6"
        assert line["run_mode"] == "manual"
    assert events["item.step"]["step"] == 1
    assert isinstance(events["worker.ready"]["startup_ms"], float)


async def test_q10_stop_waits_for_the_in_flight_job_within_grace(
    app_infra: Infra, history: InMemoryHistory, make_runtime: MakeRuntime
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(payload: Item, ctx: JobContext) -> str:
        started.set()
        await release.wait()
        return "finished"

    registry = Registry([item_job(slow)])
    runtime = make_runtime(registry, grace=30)
    await runtime.start()
    ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-7"})
    await asyncio.wait_for(started.wait(), timeout=10)
    stopping = asyncio.create_task(runtime.stop())
    await asyncio.sleep(0)  # let stop() begin: intake ends while the job is in flight
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, timeout=10)

    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.status, run.result) == ("completed", "finished")
    assert not runtime.running


async def test_a3_history_outage_at_the_end_of_an_attempt_is_retried_until_the_row_is_written(
    app_infra: Infra, fake_queue: InMemoryQueue, make_runtime: MakeRuntime, history: InMemoryHistory
) -> None:
    """A3: an attempt's row is written once, when it ends; while the history store is
    unreachable the write is retried before the queue hears the job finished, so the job
    completes once, with its row, and the outage is counted and logged."""
    calls: list[str] = []

    async def counted(payload: Item, ctx: JobContext) -> None:
        calls.append(payload.itemId)

    original = history.record_run
    failures = iter([True, True])

    async def flaky_record(run: Any) -> None:
        if next(failures, False):
            raise BackendUnavailableError("connection refused", fix="start Postgres")
        await original(run)

    history.record_run = flaky_record  # type: ignore[method-assign]
    registry = Registry([item_job(counted)])
    async with make_runtime(registry) as runtime:
        ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-8"})
        outcomes = await fake_queue.drain("items")

    assert [o.status for o in outcomes] == ["completed"]
    assert calls == ["i-8"]
    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.status, run.attempt) == ("completed", 1)
    errors = runtime.metrics.registry.get_sample_value(
        "portside_history_write_errors_total", {"operation": "record_run"}
    )
    assert errors == 1.0


async def test_a2_queue_depth_is_sampled_into_an_isolated_registry(
    app_infra: Infra, make_runtime: MakeRuntime
) -> None:
    registry = Registry([item_job(ok)])
    first, second = make_runtime(registry), make_runtime(registry)
    for index in range(3):
        await dispatch(registry, app_infra.queue, "item", {"itemId": f"d-{index}"})

    await first.sample()

    assert first.metrics.registry.get_sample_value("portside_queue_depth", {"queue": "items"}) == 3
    assert (
        second.metrics.registry.get_sample_value("portside_queue_depth", {"queue": "items"}) is None
    )
    assert b"portside_queue_depth" in first.metrics.exposition()


async def test_runtime_rejects_unknown_queues_and_missing_history(
    fake_infra: Infra, app_infra: Infra
) -> None:
    registry = Registry([item_job(ok)])

    with pytest.raises(UnknownQueueError, match="'other'"):
        WorkerRuntime(registry, app_infra, queues=["other"])
    bare = Infra(queue=fake_infra.queue, outbox=fake_infra.outbox)
    with pytest.raises(ConfigurationError, match="has no history store"):
        await WorkerRuntime(registry, bare).start()


async def test_a4_dead_letters_past_retention_are_purged(
    app_infra: Infra,
    history: InMemoryHistory,
    fake_queue: InMemoryQueue,
    clock: VirtualClock,
    make_runtime: MakeRuntime,
) -> None:
    async def boom(payload: Item, ctx: JobContext) -> None:
        raise PermanentError("bad input")

    registry = Registry([item_job(boom)])
    async with make_runtime(registry) as runtime:
        await dispatch(registry, app_infra.queue, "item", {"itemId": "old"})
        await fake_queue.drain("items")
        clock.advance(29 * 86400)
        assert await runtime.purge_expired() == 0
        clock.advance(2 * 86400)
        assert await runtime.purge_expired() == 1

    assert await history.list_failures(include_retried=True) == []


async def test_q10_job_still_running_after_grace_is_recorded_as_interrupted(
    app_infra: Infra, history: InMemoryHistory, make_runtime: MakeRuntime
) -> None:
    started = asyncio.Event()
    never = asyncio.Event()

    async def stuck(payload: Item, ctx: JobContext) -> None:
        started.set()
        await never.wait()

    registry = Registry([item_job(stuck)])
    runtime = make_runtime(registry)
    await runtime.start()
    ref = await dispatch(registry, app_infra.queue, "item", {"itemId": "i-9"})
    await asyncio.wait_for(started.wait(), timeout=10)

    await runtime.stop(grace=0.01)

    (run,) = await history.list_runs(job_id=ref.id)
    assert (run.status, run.failure_kind, run.error_class) == (
        "retrying",
        "transient",
        "CancelledError",
    )
    assert await history.list_failures() == []
