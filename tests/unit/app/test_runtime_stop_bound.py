"""Q10: ``runtime.stop(grace)`` returns within grace + STOP_MARGIN even if a close hangs."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

import pytest

from portside.app import JobContext, Registry, WorkerRuntime
from portside.app import runtime as runtime_module
from portside.app.worker_process import UnreleasedJobsError, run_worker
from portside.infra import Infra
from portside.ports import WorkerHandle, WorkerStatus
from tests.unit.app.support import Captured, Item, item_job

MARGIN = 0.3


async def ok(payload: Item, ctx: JobContext) -> None:
    return None


class StuckHandle:
    """A consumer whose ``close`` never returns; ``stubborn`` also swallows one cancellation."""

    def __init__(self, inner: WorkerHandle, *, stubborn: bool, active: int = 0) -> None:
        self.inner = inner
        self.stubborn = stubborn
        self.active = active
        self.closing: asyncio.Task[Any] | None = None
        self.close_calls = 0

    async def start(self) -> None:
        await self.inner.start()

    async def close(self, grace: float = 30.0) -> None:
        self.close_calls += 1
        self.closing = asyncio.current_task()
        never = asyncio.Event()
        try:
            await never.wait()
        except asyncio.CancelledError:
            if not self.stubborn:
                raise
        await never.wait()  # a second cancellation (the test's clean-up) ends it

    async def pause(self) -> None:
        await self.inner.pause()

    async def resume(self) -> None:
        await self.inner.resume()

    def status(self) -> WorkerStatus:
        return self.inner.status().model_copy(update={"active": self.active})

    async def clean_up(self) -> None:
        if self.closing is not None and not self.closing.done():
            self.closing.cancel()
            await asyncio.wait({self.closing}, timeout=5)
        await self.inner.close(0)


@pytest.fixture(autouse=True)
def short_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "STOP_MARGIN", MARGIN)
    monkeypatch.setattr(runtime_module, "_CANCEL_WAIT", 0.1)
    monkeypatch.setattr(runtime_module, "_BACKGROUND_WAIT", 0.1)


def stuck_infra(app_infra: Infra, handles: list[StuckHandle], **options: Any) -> Infra:
    real = app_infra.queue

    class Queue:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def consume(self, queue: str, handler: Any, **kwargs: Any) -> StuckHandle:
            handle = StuckHandle(real.consume(queue, handler, **kwargs), **options)
            handles.append(handle)
            return handle

    return replace(app_infra, queue=Queue())  # type: ignore[arg-type]


def close_timeouts(captured: Captured) -> list[logging.LogRecord]:
    return [r for r in captured.records if r.getMessage() == "worker.close_timeout"]


@pytest.mark.parametrize("stubborn", [False, True], ids=["hangs", "swallows-cancel"])
async def test_q10_stop_returns_within_grace_plus_margin_when_a_close_hangs(
    app_infra: Infra, captured: Captured, stubborn: bool
) -> None:
    handles: list[StuckHandle] = []
    infra = stuck_infra(app_infra, handles, stubborn=stubborn)
    runtime = WorkerRuntime(
        Registry([item_job(ok)]), infra, sample_interval=None, retention_interval=None
    )
    await runtime.start()
    grace = 0.2
    try:
        began = time.perf_counter()
        await asyncio.wait_for(runtime.stop(grace), timeout=10)
        took = time.perf_counter() - began
    finally:
        for handle in handles:
            await handle.clean_up()

    assert took < grace + MARGIN + 0.5, took
    assert handles[0].close_calls == 1
    (record,) = close_timeouts(captured)
    assert record.levelno == logging.ERROR
    assert "items" in str(vars(record)), vars(record)
    assert "close" in str(vars(record)), "the log names where the close hangs"
    assert runtime.unreleased == 0
    assert not runtime.running


async def test_q10_run_worker_fails_when_a_stuck_close_still_held_jobs(
    app_infra: Infra, captured: Captured
) -> None:
    handles: list[StuckHandle] = []
    infra = stuck_infra(app_infra, handles, stubborn=False, active=2)
    stop = asyncio.Event()
    stop.set()
    try:
        with pytest.raises(UnreleasedJobsError, match="2 in-flight job"):
            await asyncio.wait_for(
                run_worker(Registry([item_job(ok)]), infra, stop, grace=0.1), timeout=10
            )
    finally:
        for handle in handles:
            await handle.clean_up()
    assert len(close_timeouts(captured)) == 1


async def test_q10_stop_bounds_a_background_task_that_ignores_cancellation(
    app_infra: Infra, captured: Captured
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def stubborn_sample() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()

    runtime = WorkerRuntime(
        Registry([item_job(ok)]), app_infra, sample_interval=60, retention_interval=None
    )
    runtime.sample = stubborn_sample  # type: ignore[method-assign]
    await runtime.start()
    await asyncio.wait_for(entered.wait(), timeout=5)
    try:
        await asyncio.wait_for(runtime.stop(0), timeout=10)
    finally:
        release.set()
    (record,) = close_timeouts(captured)
    assert "sampler" in str(vars(record))


async def test_q10_stop_ends_a_sampler_whose_command_swallowed_the_cancellation(
    app_infra: Infra, captured: Captured
) -> None:
    """redis-py can return a reply after its task was cancelled; the sampler must still end."""
    entered = asyncio.Event()
    finish = asyncio.Event()
    calls = 0

    async def swallowing_sample() -> None:
        nonlocal calls
        calls += 1
        entered.set()
        try:
            await finish.wait()
        except asyncio.CancelledError:
            return  # the reply arrived anyway: the cancellation is lost

    runtime = WorkerRuntime(
        Registry([item_job(ok)]), app_infra, sample_interval=0.001, retention_interval=None
    )
    runtime.sample = swallowing_sample  # type: ignore[method-assign]
    await runtime.start()
    await asyncio.wait_for(entered.wait(), timeout=5)

    await asyncio.wait_for(runtime.stop(0), timeout=10)

    assert close_timeouts(captured) == [], "the sampler kept running after stop()"
    assert calls == 1
