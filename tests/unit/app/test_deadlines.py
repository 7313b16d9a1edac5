"""Q5: attempt timeouts on one timer behave like ``asyncio.timeout``."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from portside.app.deadlines import Deadlines


async def test_q5_work_past_its_deadline_times_out_and_the_rest_does_not() -> None:
    deadlines = Deadlines()
    finished: list[str] = []

    async def work(name: str, never_ends: bool, timeout: float) -> None:
        try:
            async with deadlines.after(timeout):
                if never_ends:
                    await asyncio.Event().wait()
                await asyncio.sleep(0)
            finished.append(name)
        except TimeoutError:
            finished.append(f"{name} timed out")

    await asyncio.gather(
        work("slow", True, 0.05), work("quick", False, 0.05), work("long timeout", False, 5)
    )
    assert sorted(finished) == ["long timeout", "quick", "slow timed out"]


async def test_q5_an_outer_cancellation_is_not_a_timeout() -> None:
    deadlines = Deadlines()
    started = asyncio.Event()

    async def work() -> None:
        async with deadlines.after(5):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_q5_work_that_swallows_the_cancel_at_its_deadline_ends_normally() -> None:
    """As with ``asyncio.timeout``: if the work swallows the cancellation and returns, there
    is no timeout error, and the task owes no pending cancellation."""
    deadlines = Deadlines()

    async def work() -> str:
        async with deadlines.after(0.01) as scope:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        assert scope.expired
        await asyncio.sleep(0)  # would raise if a cancellation were still pending
        return "done"

    assert await work() == "done"


async def test_q5_finished_work_leaves_no_deadline_behind() -> None:
    deadlines = Deadlines()
    for _ in range(100):
        async with deadlines.after(30):
            await asyncio.sleep(0)
    assert all(not group for group in deadlines._by_timeout.values())
