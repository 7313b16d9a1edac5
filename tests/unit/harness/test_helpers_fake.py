"""The harness helpers on the in-memory fakes (H3); the same scenarios run on the real
adapters in tests/integration/harness/test_helpers_real.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from portside import Infra, get_infra, use_infra
from portside.adapters.memory import InMemoryOutbox, InMemoryQueue
from portside.ports import ConfigurationError, JobOptions, ValidationError
from portside.testing import EventCapture, WaitTimeout, drain_queue, paused
from tests.unit.harness.helper_scenarios import SCENARIOS, double

Scenario = Callable[[Infra], Awaitable[None]]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_h3_helpers_on_fakes(fake_infra: Infra, scenario: Scenario) -> None:
    await scenario(fake_infra)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_h3_helpers_are_deterministic(scenario: Scenario) -> None:
    """Every scenario passes on fresh fakes ten times in a row, with the same outcomes."""
    for _ in range(10):
        async with Infra(queue=InMemoryQueue(), outbox=InMemoryOutbox(), name="fresh") as infra:
            with use_infra(infra):
                await scenario(infra)


async def test_h2_fake_infra_is_installed_for_the_test(fake_infra: Infra) -> None:
    assert get_infra() is fake_infra
    assert fake_infra.name == "fake"
    assert fake_infra.history is not None
    assert fake_infra.cache is not None


async def test_h3_fake_infra_shares_one_virtual_clock(fake_infra: Infra) -> None:
    assert isinstance(fake_infra.queue, InMemoryQueue)
    assert isinstance(fake_infra.outbox, InMemoryOutbox)
    assert fake_infra.queue.clock is fake_infra.outbox.clock
    cache = fake_infra.require_cache()
    await cache.set("k", b"v", ttl=10)
    await fake_infra.queue.advance(11)
    assert await cache.get("k") is None


def test_h2_a_sync_test_sees_the_installed_fake_infra(fake_infra: Infra) -> None:
    assert get_infra() is fake_infra


async def test_h3_helper_fixtures_are_the_importable_helpers(
    drain_queue: object, drain_outbox_once: object, paused: object, wait_for: object
) -> None:
    from portside import testing

    assert drain_queue is testing.drain_queue
    assert drain_outbox_once is testing.drain_outbox_once
    assert paused is testing.paused
    assert wait_for is testing.wait_for


async def test_h3_queue_events_fixture_captures_and_closes(
    fake_infra: Infra, queue_events: Callable[[str], EventCapture]
) -> None:
    events = queue_events("h3-fixture-events")
    fake_infra.queue.consume("h3-fixture-events", double)
    await fake_infra.queue.enqueue("h3-fixture-events", "double", {"n": 2})
    await drain_queue("h3-fixture-events")
    (done,) = await events.wait_for("completed")
    assert done.result == 4


async def test_h3_event_wait_timeout_says_what_was_awaited(fake_infra: Infra) -> None:
    async with EventCapture(fake_infra.queue, "h3-quiet") as events:
        await fake_infra.queue.enqueue(
            "h3-quiet", "double", {"n": 1}, options=JobOptions(job_id="q1")
        )
        await events.wait_for("enqueued", job_id="q1")
        with pytest.raises(
            WaitTimeout,
            match=r"waiting for 1 completed event\(s\) of job q1 on queue 'h3-quiet'; "
            r"received \['enqueued'\]",
        ):
            await events.wait_for("completed", job_id="q1", timeout=0.05)


async def test_h3_paused_worker_takes_no_jobs_until_resumed(fake_infra: Infra) -> None:
    worker = fake_infra.queue.consume("h3-worker", double)
    await fake_infra.queue.enqueue("h3-worker", "double", {"n": 3})
    async with paused(worker):
        assert worker.status().paused
    assert not worker.status().paused
    assert [o.result for o in await drain_queue("h3-worker")] == [6]


async def test_h3_paused_outbox_that_was_not_running_stays_stopped(fake_infra: Infra) -> None:
    assert isinstance(fake_infra.outbox, InMemoryOutbox)
    async with paused(fake_infra.outbox):
        pass
    assert not fake_infra.outbox.running


async def test_h3_paused_rejects_what_it_cannot_hold(fake_infra: Infra) -> None:
    with pytest.raises(ValidationError, match="paused\\(\\) takes a queue name"):
        async with paused(42):  # type: ignore[arg-type]
            pass


class QueueWithoutDrain(InMemoryQueue):
    drain = None  # type: ignore[assignment]


async def test_h3_drain_queue_names_the_missing_method() -> None:
    async with Infra(queue=QueueWithoutDrain(), outbox=InMemoryOutbox()) as infra:
        with pytest.raises(ConfigurationError, match="QueueWithoutDrain has no drain\\(queue\\)"):
            await drain_queue("q", infra=infra)
