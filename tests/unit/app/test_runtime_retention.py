"""A3, A4: the worker runtime purges finished run history and dead letters past retention."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app import Registry, WorkerRuntime
from portside.app.logs import JsonFormatter
from portside.infra import Infra
from portside.ports import NewDeadLetter, RunFinish, RunStart, ValidationError
from portside.testing import wait_for
from tests.unit.app.support import Captured, item_job


async def _noop(payload: object, ctx: object) -> None:
    return None


REGISTRY = Registry([item_job(_noop)])


async def _seed(history: InMemoryHistory, clock: VirtualClock) -> tuple[str, str, str]:
    """An attempt that ended 31 days ago, one that ended a day ago, and one still running."""
    now = clock.datetime()

    async def run(job_id: str, ended: timedelta | None) -> str:
        started = now - timedelta(days=40)
        stored = await history.record_start(
            RunStart(
                job_id=job_id,
                queue="items",
                name="item",
                attempt=1,
                run_mode="manual",
                started_at=started,
            )
        )
        if ended is not None:
            await history.record_finish(
                stored.id, RunFinish(status="completed", finished_at=now - ended)
            )
        return stored.id

    return (
        await run("old", timedelta(days=31)),
        await run("recent", timedelta(days=1)),
        await run("running", None),
    )


def _lines(captured: Captured) -> list[dict[str, object]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in captured.records]


async def test_a3_worker_purges_finished_runs_past_retention_and_logs_the_count(
    app_infra: Infra, history: InMemoryHistory, clock: VirtualClock, captured: Captured
) -> None:
    old, recent, running = await _seed(history, clock)
    runtime = WorkerRuntime(
        REGISTRY, app_infra, clock=clock.datetime, sample_interval=None, retention_interval=3600
    )
    async with runtime:
        await wait_for(lambda: old not in history.runs, message="the old run to be purged")

    assert set(history.runs) == {recent, running}
    purged = [line for line in _lines(captured) if line["event"] == "job_runs.purged"]
    assert [line["removed"] for line in purged] == [1]


async def test_a3_run_retention_is_configurable(
    app_infra: Infra, history: InMemoryHistory, clock: VirtualClock
) -> None:
    _, _, running = await _seed(history, clock)
    runtime = WorkerRuntime(
        REGISTRY, app_infra, clock=clock.datetime, run_retention=timedelta(hours=1)
    )
    assert await runtime.purge_runs() == 2
    assert set(history.runs) == {running}


async def test_a3_run_retention_none_keeps_run_history(
    app_infra: Infra, history: InMemoryHistory, clock: VirtualClock
) -> None:
    await _seed(history, clock)
    letter = await history.add_failure(
        NewDeadLetter(
            queue="items",
            job_id="dead",
            name="item",
            data={},
            error_class="Boom",
            error_message="",
            failure_kind="permanent",
            attempts_made=1,
            failed_at=clock.datetime() - timedelta(days=31),
        )
    )
    runtime = WorkerRuntime(
        REGISTRY,
        app_infra,
        clock=clock.datetime,
        sample_interval=None,
        retention_interval=3600,
        run_retention=None,
    )
    async with runtime:
        await wait_for(
            lambda: letter.id not in history.failures, message="the dead-letter purge to run"
        )
        assert await runtime.purge_runs() == 0
    assert len(history.runs) == 3


async def test_a3_a_failing_dead_letter_purge_does_not_stop_the_run_purge(
    app_infra: Infra,
    history: InMemoryHistory,
    clock: VirtualClock,
    captured: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, _, _ = await _seed(history, clock)

    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("dead letters unavailable")

    monkeypatch.setattr(history, "purge_failures", broken)
    runtime = WorkerRuntime(
        REGISTRY, app_infra, clock=clock.datetime, sample_interval=None, retention_interval=3600
    )
    async with runtime:
        await wait_for(lambda: old not in history.runs, message="the old run to be purged")
    assert any(line["event"] == "worker.background_failed" for line in _lines(captured))


@pytest.mark.parametrize("age", [timedelta(0), timedelta(days=-1)])
def test_a3_run_retention_must_be_positive(app_infra: Infra, age: timedelta) -> None:
    with pytest.raises(ValidationError, match="run_retention"):
        WorkerRuntime(REGISTRY, app_infra, run_retention=age)


@pytest.mark.parametrize("run_retention", [timedelta(days=7), None])
async def test_a3_portside_worker_passes_its_run_retention_to_the_runtime(
    monkeypatch: pytest.MonkeyPatch, run_retention: timedelta | None
) -> None:
    """``run_worker`` (what ``portside worker`` calls with ``Settings.run_retention()``)
    builds its runtime with the given retention."""
    import asyncio

    from portside.app import worker_process

    seen: dict[str, object] = {}

    class Spy(WorkerRuntime):
        def __init__(self, *args: object, **kwargs: object) -> None:
            seen.update(kwargs)
            raise RuntimeError("built")

    monkeypatch.setattr(worker_process, "WorkerRuntime", Spy)
    with pytest.raises(RuntimeError, match="built"):
        await worker_process.run_worker(
            REGISTRY,
            Infra(queue=InMemoryQueue(), outbox=InMemoryOutbox()),
            asyncio.Event(),
            run_retention=run_retention,
        )
    assert seen["run_retention"] == run_retention
