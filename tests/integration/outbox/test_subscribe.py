"""subscribe(stream, from_seq): replay from the table, then live, no gap, no repeat (O4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxEvent, ValidationError
from portside.testing import wait_for

from .support import DEADLINE, append_many

pytestmark = pytest.mark.integration


async def _collect(events: AsyncIterator[OutboxEvent], last_seq: int) -> list[int]:
    seqs: list[int] = []
    async for event in events:
        seqs.append(event.seq)
        if event.seq >= last_seq:
            break
    return seqs


async def _next(events: AsyncIterator[OutboxEvent]) -> OutboxEvent:
    return await anext(events)


@pytest.fixture
async def reader(postgres_dsn: str) -> AsyncIterator[PostgresOutbox]:
    """An outbox with a tiny read page and no publisher: another process reading the stream."""
    other = PostgresOutbox(postgres_dsn, subscribe_page=3)
    try:
        yield other
    finally:
        await other.close()


async def test_o4_replay_then_live_has_no_gap_and_no_duplicate(
    outbox: PostgresOutbox, reader: PostgresOutbox
) -> None:
    """O4: stored events from from_seq, then concurrent live commits, each exactly once."""
    await append_many(outbox, "run", 20)
    writers, rounds, per_tx = 8, 5, 2
    last = 20 + writers * rounds * per_tx
    subscription = asyncio.create_task(_collect(reader.subscribe("run", from_seq=5), last))

    async def writer() -> None:
        for _ in range(rounds):
            await append_many(outbox, "run", per_tx)

    await asyncio.gather(*(writer() for _ in range(writers)))
    seqs = await asyncio.wait_for(subscription, DEADLINE)
    assert seqs == list(range(5, last + 1))


async def test_o4_subscriber_waiting_at_the_head_sees_the_next_commit(
    outbox: PostgresOutbox, reader: PostgresOutbox
) -> None:
    """O4: a subscriber past the last stored event wakes up on the next commit only."""
    await append_many(outbox, "run", 2)
    await append_many(outbox, "noise", 3)
    events = reader.subscribe("run", from_seq=3)
    first = asyncio.create_task(_next(events))
    done, _ = await asyncio.wait({first}, timeout=0.1)
    assert not done, "subscribe yielded before seq 3 existed"
    await append_many(outbox, "run", 1, marker="third")
    event = await asyncio.wait_for(first, DEADLINE)
    assert (event.stream, event.seq, event.payload["marker"]) == ("run", 3, "third")
    await events.aclose()


async def test_o4_subscriber_survives_a_killed_listener(
    outbox: PostgresOutbox, reader: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O4/O5: events committed while the subscriber's LISTEN link is down still arrive."""
    await append_many(outbox, "run", 1)
    events = reader.subscribe("run")
    assert (await asyncio.wait_for(anext(events), DEADLINE)).seq == 1
    pid = reader.listener_pid
    assert pid is not None
    assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
    await append_many(outbox, "run", 2)
    assert await asyncio.wait_for(_collect(events, 3), DEADLINE) == [2, 3]
    await events.aclose()


async def test_o4_replay_starts_at_the_oldest_event_retention_kept(
    outbox: PostgresOutbox,
) -> None:
    """O4/O6: events deleted by retention are skipped; the rest follow without a gap."""
    await append_many(outbox, "run", 3)
    await outbox.drain_once()
    assert await outbox.purge_published(0) == 3
    await append_many(outbox, "run", 2)
    events = outbox.subscribe("run", from_seq=2)
    assert await asyncio.wait_for(_collect(events, 5), DEADLINE) == [4, 5]
    await events.aclose()


async def test_o4_close_ends_open_subscriptions(reader: PostgresOutbox) -> None:
    """Closing the outbox finishes its subscriptions' iterators."""
    subscription = asyncio.create_task(_collect(reader.subscribe("quiet"), 1))
    await wait_for(
        lambda: reader.listener_pid is not None, timeout=DEADLINE, message="the LISTEN session"
    )
    await reader.close()
    assert await asyncio.wait_for(subscription, DEADLINE) == []


@pytest.mark.parametrize(("from_seq", "message"), [(0, "seq starts at 1"), ("1", "int")])
async def test_o4_bad_from_seq_is_rejected(
    outbox: PostgresOutbox, from_seq: object, message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        outbox.subscribe("run", from_seq)  # type: ignore[arg-type]
    assert info.value.field == "from_seq"
