"""wait_for: conditions with deadlines and messages (H3)."""

from __future__ import annotations

import time

import pytest

from portside.testing import WaitTimeout, wait_for


async def test_h3_returns_as_soon_as_the_condition_holds() -> None:
    checks: list[int] = []

    def third_check() -> bool:
        checks.append(1)
        return len(checks) == 3

    await wait_for(third_check, timeout=5, message="the third check")
    assert len(checks) == 3


async def test_h3_accepts_an_async_condition() -> None:
    async def ready() -> bool:
        return True

    await wait_for(ready, message="an async condition")


async def test_h3_timeout_names_what_was_awaited() -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"timed out after 0.05 s waiting for the moon"):
        await wait_for(lambda: False, timeout=0.05, message="the moon")
    assert time.monotonic() - started < 1


async def test_h3_timeout_reports_the_last_error_of_the_condition() -> None:
    def broken() -> bool:
        raise KeyError("job-7")

    with pytest.raises(WaitTimeout, match=r"last check raised KeyError: 'job-7'"):
        await wait_for(broken, timeout=0.02, message="job-7 to appear")


async def test_h3_a_message_is_required() -> None:
    with pytest.raises(ValueError, match="message"):
        await wait_for(lambda: True, message="")


def test_h3_wait_timeout_is_a_test_failure_not_an_error() -> None:
    assert issubclass(WaitTimeout, AssertionError)
