"""InMemoryOutbox specifics: virtual clock, units of work, deadlocks, publisher errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from portside.adapters.memory import InMemoryOutbox, InMemoryTransaction, VirtualClock
from portside.ports import (
    ConfigurationError,
    OutboxEvent,
    OutboxPort,
    TransientError,
    ValidationError,
)


def test_the_fake_implements_the_port_protocol() -> None:
    assert isinstance(InMemoryOutbox(), OutboxPort)


async def test_o1_events_are_staged_on_the_unit_of_work_until_commit() -> None:
    """O1: the transaction object shows what it holds; only a commit makes it visible."""
    clock = VirtualClock()
    outbox = InMemoryOutbox(clock)
    async with outbox.transaction() as tx:
        assert isinstance(tx, InMemoryTransaction)
        event = await outbox.append(tx, "run-1", "started", {"a": 1})
        assert tx.events == [event]
        assert outbox.events() == []
    assert outbox.events() == [event]
    assert event.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="tx is already committed") as info:
        await outbox.append(tx, "run-1", "late", {})
    assert info.value.field == "tx"


async def test_o1_a_transaction_of_another_store_is_refused() -> None:
    mine, theirs = InMemoryOutbox(), InMemoryOutbox()
    async with theirs.transaction() as tx:
        with pytest.raises(ValidationError, match="not a transaction of this outbox"):
            await mine.append(tx, "s", "t", {})
    shared = mine.share()
    async with mine.transaction() as tx:
        await shared.append(tx, "s", "t", {})
    assert await mine.pending() == 1


async def test_o4_crossed_appends_on_two_streams_are_a_deadlock_error() -> None:
    """O4: two units of work locking streams in opposite orders: one gets a TransientError
    at once (as Postgres reports a deadlock) instead of both hanging."""
    outbox = InMemoryOutbox()
    first_holds, second_holds = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "a", "t", {})
            first_holds.set()
            await second_holds.wait()
            await outbox.append(tx, "b", "t", {})

    async def second() -> None:
        async with outbox.transaction() as tx:
            await first_holds.wait()
            await outbox.append(tx, "b", "t", {})
            second_holds.set()
            await outbox.append(tx, "a", "t", {})

    results = await asyncio.wait_for(asyncio.gather(first(), second(), return_exceptions=True), 5)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert isinstance(errors[0], TransientError)
    assert "deadlock" in str(errors[0])
    assert sorted((e.stream, e.seq) for e in outbox.events()) == [("a", 1), ("b", 1)]


async def test_o6_retention_follows_the_virtual_clock() -> None:
    """O6: ``published_at`` is virtual time; purge_published ages events on that clock."""
    clock = VirtualClock()
    outbox = InMemoryOutbox(clock)
    async with outbox.transaction() as tx:
        await outbox.append(tx, "s", "t", {})
    clock.advance(5)
    await outbox.drain_once()
    (stored,) = outbox.events("s")
    assert stored.published_at is not None
    assert stored.published_at.timestamp() == clock.now()
    clock.advance(3599)
    assert await outbox.purge_published(3600) == 0
    clock.advance(1)
    assert await outbox.purge_published(3600) == 1
    assert outbox.events() == []


async def test_o3_background_failures_go_to_on_error_and_retry_on_the_next_commit() -> None:
    """O3, O5: the started publisher reports handler errors and keeps the event; the next
    commit wakes it and the event is delivered again (the fake has no retry timer)."""
    outbox = InMemoryOutbox()
    seen: list[OutboxEvent] = []
    errors: list[BaseException] = []
    fail = {"once": True}
    both = asyncio.Event()

    async def handler(event: OutboxEvent) -> None:
        if fail.pop("once", False):
            raise ConnectionError("webhook down")
        seen.append(event)
        if len(seen) == 2:
            both.set()

    outbox.add_handler(handler)
    reported = asyncio.Event()

    def on_error(error: BaseException) -> None:
        errors.append(error)
        reported.set()

    await outbox.start(on_error=on_error)
    running_after_start = outbox.running
    try:
        async with outbox.transaction() as tx:
            first = await outbox.append(tx, "hooks", "t", {})
        await asyncio.wait_for(reported.wait(), 5)
        assert await outbox.pending() == 1
        async with outbox.transaction() as tx:
            second = await outbox.append(tx, "hooks", "t", {})
        await asyncio.wait_for(both.wait(), 5)
    finally:
        await outbox.stop()
    assert (running_after_start, outbox.running) == (True, False)
    assert [e.id for e in seen] == [first.id, second.id]
    assert [str(e) for e in errors] == ["webhook down"]
    assert outbox.errors == errors


async def test_removing_a_handler_stops_its_deliveries() -> None:
    outbox = InMemoryOutbox()
    seen: list[int] = []

    async def handler(event: OutboxEvent) -> None:
        seen.append(event.seq)

    remove = outbox.add_handler(handler)
    for _ in range(2):
        async with outbox.transaction() as tx:
            await outbox.append(tx, "s", "t", {})
        await outbox.drain_once()
        remove()
    assert seen == [1]


async def test_reset_forgets_events_and_counters() -> None:
    outbox = InMemoryOutbox()
    async with outbox.transaction() as tx:
        await outbox.append(tx, "s", "t", {})
    outbox.reset()
    assert outbox.events() == []
    assert await outbox.pending() == 0
    async with outbox.transaction() as tx:
        assert (await outbox.append(tx, "s", "t", {})).seq == 1


async def test_close_ends_subscriptions_and_refuses_work() -> None:
    outbox = InMemoryOutbox()
    events = outbox.subscribe("s")
    follower = asyncio.create_task(anext(events, None))
    await outbox.close()
    assert await asyncio.wait_for(follower, 5) is None
    with pytest.raises(ConfigurationError, match="this InMemoryOutbox is closed"):
        outbox.subscribe("s")
    with pytest.raises(ConfigurationError):
        async with outbox.transaction():
            pass


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "key is empty"), (7, "got int"), ("k" * 201, "at most 200")],
)
async def test_append_checks_the_key(key: object, message: str) -> None:
    outbox = InMemoryOutbox()
    async with outbox.transaction() as tx:
        with pytest.raises(ValidationError, match=message) as info:
            await outbox.append(tx, "s", "t", {}, key=key)  # type: ignore[arg-type]
    assert info.value.field == "key"


def test_a_shared_outbox_must_use_the_store_clock() -> None:
    outbox = InMemoryOutbox()
    with pytest.raises(ValidationError, match="clock differs"):
        InMemoryOutbox(VirtualClock(), store=outbox.store)
