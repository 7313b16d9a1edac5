"""A4: dead letters can be retried (once) and purged."""

from __future__ import annotations

from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app import JobContext, Registry, dispatch, purge_failures, retry_failure
from portside.app.failures import retry_job_id
from portside.infra import Infra
from portside.ports import PermanentError, ValidationError
from tests.unit.app.support import Item, item_job


def failing_registry(fail_for: set[str]) -> Registry:
    async def handler(payload: Item, ctx: JobContext) -> str:
        if payload.itemId in fail_for:
            raise PermanentError("invalid token")
        return "done"

    return Registry([item_job(handler)])


async def dead_letter(
    app_infra: Infra, fake_queue: InMemoryQueue, make_runtime: Any, registry: Registry
) -> str:
    async with make_runtime(registry):
        await dispatch(registry, app_infra.queue, "item", {"itemId": "x"}, job_id="job-x")
        await fake_queue.drain("items")
    history = app_infra.require_history()
    (failure,) = await history.list_failures()
    return failure.id


async def test_a4_retry_moves_the_failed_job_back_and_marks_the_dead_letter(
    app_infra: Infra, fake_queue: InMemoryQueue, history: InMemoryHistory, make_runtime: Any
) -> None:
    fail_for = {"x"}
    registry = failing_registry(fail_for)
    failure_id = await dead_letter(app_infra, fake_queue, make_runtime, registry)

    fail_for.clear()  # the token was fixed
    outcome = await retry_failure(registry, app_infra, failure_id)
    async with make_runtime(registry):
        await fake_queue.drain("items")

    assert (outcome.how, outcome.job.id) == ("requeued", "job-x")
    info = await app_infra.queue.get_job("items", "job-x")
    assert info is not None
    assert (info.state, info.result) == ("completed", "done")
    assert outcome.failure.retry_job_id == "job-x"
    assert await history.list_failures() == []
    with pytest.raises(ValidationError, match="was already retried as job 'job-x'"):
        await retry_failure(registry, app_infra, failure_id)
    with pytest.raises(ValidationError, match="no dead letter with id 'nope'"):
        await retry_failure(registry, app_infra, "nope")


async def test_a4_retry_re_enqueues_a_copy_when_the_queue_lost_the_job(
    app_infra: Infra, fake_queue: InMemoryQueue, history: InMemoryHistory, make_runtime: Any
) -> None:
    registry = failing_registry(set())
    failure_id = await dead_letter(app_infra, fake_queue, make_runtime, failing_registry({"x"}))
    await app_infra.queue.obliterate("items", force=True)

    outcome = await retry_failure(registry, app_infra, failure_id)
    async with make_runtime(registry):
        await fake_queue.drain("items")

    failure = await history.get_failure(failure_id)
    assert failure is not None
    assert outcome.how == "re-enqueued"
    assert outcome.job.id == retry_job_id(failure)
    assert outcome.job.id.startswith("job-x.retry-")
    info = await app_infra.queue.get_job("items", outcome.job.id)
    assert info is not None
    assert (info.state, info.max_attempts) == ("completed", 3)


async def test_a4_purge_uses_30_days_by_default(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    history: InMemoryHistory,
    clock: VirtualClock,
    make_runtime: Any,
) -> None:
    await dead_letter(app_infra, fake_queue, make_runtime, failing_registry({"x"}))

    clock.advance(30 * 86400 - 1)
    assert await purge_failures(app_infra, clock=clock.datetime) == 0
    clock.advance(2)
    assert await purge_failures(app_infra, clock=clock.datetime) == 1
    assert await history.list_failures(include_retried=True) == []
