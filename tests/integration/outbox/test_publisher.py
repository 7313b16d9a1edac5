"""The publisher: push delivery, drain_once, handler failures, several publishers (O2, O3, O6)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxEvent

from .support import DEADLINE, Deliveries, append_many, wait_until

pytestmark = pytest.mark.integration


async def _none_pending(outbox: PostgresOutbox) -> bool:
    return await outbox.pending() == 0


async def test_o2_started_publisher_delivers_a_commit_without_any_drain(
    outbox: PostgresOutbox,
) -> None:
    """O2: NOTIFY wakes the publisher; the events arrive in seq order and are marked."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    await outbox.start()
    await append_many(outbox, "run-1", 5)
    events = await deliveries.wait_for(5)
    assert [(e.stream, e.seq) for e in events] == [("run-1", seq) for seq in range(1, 6)]
    assert all(e.published_at is not None for e in events)
    assert [e.payload["i"] for e in events] == list(range(5))
    await outbox.stop()
    assert await outbox.pending() == 0


async def test_o2_catch_up_scan_on_start_delivers_the_backlog(outbox: PostgresOutbox) -> None:
    """O2/O5: events committed before start() are delivered by the start-up catch-up scan."""
    await append_many(outbox, "a", 3)
    await append_many(outbox, "b", 2)
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    await outbox.start()
    await deliveries.wait_for(5)
    assert deliveries.seqs("a") == [1, 2, 3]
    assert deliveries.seqs("b") == [1, 2]


async def test_o3_drain_once_delivers_everything_committed_before_the_call(
    outbox: PostgresOutbox,
) -> None:
    """O3: after drain_once returns, every earlier commit was delivered; a repeat finds none."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    for stream in ("s1", "s2", "s3"):
        await append_many(outbox, stream, 4)
    assert await outbox.pending() == 12
    assert await outbox.drain_once("s2") == 4
    assert deliveries.seqs("s2") == [1, 2, 3, 4]
    assert deliveries.seqs("s1") == []
    assert await outbox.drain_once() == 8
    assert len(deliveries.log) == 12
    assert deliveries.seqs("s1") == [1, 2, 3, 4]
    assert await outbox.drain_once() == 0
    assert await outbox.pending() == 0


async def test_o3_drain_once_with_a_large_backlog_spans_several_batches(
    postgres_dsn: str,
) -> None:
    """O3: a backlog bigger than one batch is still delivered in full and in order."""
    outbox = PostgresOutbox(postgres_dsn, batch_size=7)
    try:
        deliveries = Deliveries()
        outbox.add_handler(deliveries.handler())
        await append_many(outbox, "big", 30)
        assert await outbox.drain_once("big") == 30
        assert deliveries.seqs("big") == list(range(1, 31))
    finally:
        await outbox.close()


async def test_o3_drain_once_while_the_publisher_runs_never_delivers_twice(
    outbox: PostgresOutbox,
) -> None:
    """O3/O6: drain_once waits for streams the running publisher holds instead of repeating."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    await outbox.start()
    for round_ in range(10):
        await append_many(outbox, f"s{round_ % 3}", 5)
        await outbox.drain_once()
        # Everything committed so far has been delivered, by the publisher or by drain.
        assert len(deliveries.log) == 5 * (round_ + 1)
    ids = [event.id for event in deliveries.events]
    assert len(ids) == len(set(ids)) == 50
    for stream in ("s0", "s1", "s2"):
        seqs = deliveries.seqs(stream)
        assert seqs == list(range(1, len(seqs) + 1))


async def test_o6_handler_failure_keeps_the_event_pending_and_retries_it(
    postgres_dsn: str,
) -> None:
    """O6: a failing handler leaves its event unpublished, reports it, and it is redelivered."""
    outbox = PostgresOutbox(postgres_dsn, retry_initial=0.05, retry_max=0.2)
    errors: list[BaseException] = []
    deliveries = Deliveries()
    record = deliveries.handler()
    failures_left = 2

    async def flaky(event: OutboxEvent) -> None:
        nonlocal failures_left
        if event.seq == 2 and failures_left:
            failures_left -= 1
            raise RuntimeError("downstream is down")
        await record(event)

    try:
        outbox.add_handler(flaky)
        await outbox.start(on_error=errors.append)
        await append_many(outbox, "run", 3)
        # 1 is published; 2 fails twice, holding back 3 (order); the retry timer redelivers.
        await deliveries.wait_for(3)
        assert deliveries.seqs("run") == [1, 2, 3]
        assert [str(error) for error in errors] == ["downstream is down"] * 2
        await wait_until(lambda: _none_pending(outbox), "the retried batch to commit")
    finally:
        await outbox.close()


async def test_o3_drain_once_raises_the_handler_error_after_delivering_the_rest(
    outbox: PostgresOutbox,
) -> None:
    """O3: drain_once surfaces a handler failure; other streams are still delivered."""
    deliveries = Deliveries()
    record = deliveries.handler()

    async def handler(event: OutboxEvent) -> None:
        if event.stream == "bad" and event.seq == 2:
            raise ValueError("cannot handle bad #2")
        await record(event)

    outbox.add_handler(handler)
    await append_many(outbox, "bad", 3)
    await append_many(outbox, "good", 2)
    with pytest.raises(ValueError, match="bad #2"):
        await outbox.drain_once()
    assert deliveries.seqs("bad") == [1]
    assert deliveries.seqs("good") == [1, 2]
    assert await outbox.pending() == 2


async def test_o6_two_publishers_deliver_each_event_once_in_order_per_stream(
    outbox: PostgresOutbox, second_outbox: PostgresOutbox
) -> None:
    """O6: two publishers on one database: no loss, no duplicate, seq order per stream."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler("one"))
    second_outbox.add_handler(deliveries.handler("two"))
    await outbox.start()
    await second_outbox.start()
    streams, rounds, per_tx = 6, 10, 10

    async def producer(stream: str) -> None:
        for _ in range(rounds):
            await append_many(outbox, stream, per_tx)

    await asyncio.gather(*(producer(f"run-{n}") for n in range(streams)))
    total = streams * rounds * per_tx
    events = await deliveries.wait_for(total)
    assert len({event.id for event in events}) == total == len(events)
    for n in range(streams):
        assert deliveries.seqs(f"run-{n}") == list(range(1, rounds * per_tx + 1))
    await wait_until(lambda: _none_pending(outbox), "the last batches to commit")


async def test_o3_stop_waits_for_the_in_flight_batch(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O3: stop() returns only after the batch being delivered is committed."""
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow(event: OutboxEvent) -> None:
        entered.set()
        await release.wait()

    outbox.add_handler(slow)
    await outbox.start()
    await append_many(outbox, "run", 1)
    await asyncio.wait_for(entered.wait(), DEADLINE)
    stopping = asyncio.create_task(outbox.stop())
    done, _ = await asyncio.wait({stopping}, timeout=0.1)
    assert not done, "stop() returned while a handler was still running"
    release.set()
    await asyncio.wait_for(stopping, DEADLINE)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM portside_outbox_events WHERE published_at IS NOT NULL"
        )
        == 1
    )


async def test_o3_events_committed_while_stopped_are_delivered_after_restart(
    outbox: PostgresOutbox,
) -> None:
    """O3/O5: stop() leaves new commits pending; start() again catches up (the `paused` shape)."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    await outbox.start()
    await append_many(outbox, "run", 1)
    await deliveries.wait_for(1)
    await outbox.stop()
    await append_many(outbox, "run", 2)
    assert await outbox.pending() == 2
    assert outbox.listener_pid is None  # nobody is listening while stopped
    await outbox.start()
    await deliveries.wait_for(3)
    assert deliveries.seqs("run") == [1, 2, 3]


async def test_o6_a_hot_stream_does_not_starve_the_others(postgres_dsn: str) -> None:
    """O6: streams are claimed round-robin, so a long backlog in one stream does not hold
    back a single event of another."""
    outbox = PostgresOutbox(postgres_dsn, batch_size=10, max_streams_per_batch=1)
    try:
        await append_many(outbox, "a-hot", 300)  # sorts first: the scan would always find it
        for stream in ("b", "c", "d", "e"):
            await append_many(outbox, stream, 1)
        deliveries = Deliveries()
        outbox.add_handler(deliveries.handler())
        await outbox.start()
        events = await deliveries.wait_for(304)
        first_of_each = {e.stream: index for index, e in reversed(list(enumerate(events)))}
        # One batch of a-hot (10 events), then b, c, d and e in turn.
        assert max(first_of_each[s] for s in "bcde") < 20, first_of_each
        assert deliveries.seqs("a-hot") == list(range(1, 301))
    finally:
        await outbox.close()
