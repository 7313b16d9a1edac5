"""Subscribers of one stream share its reads; the behind, the slow and the late still get every
event exactly once, in order (O4; issue 9)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox, subscriptions
from portside.adapters.postgres.queries import query
from portside.ports import OutboxEvent
from portside.testing import wait_for

from .support import DEADLINE, append_many, wait_until

pytestmark = pytest.mark.integration


class QueryCount:
    """Counts the subscription queries by name (``read_stream`` is a subscriber's own read,
    ``read_streams`` the shared one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: Counter[str] = Counter()
        monkeypatch.setattr(subscriptions, "query", self._query)

    def _query(self, name: str) -> str:
        self.names[name] += 1
        return query(name)


@pytest.fixture
async def small_reads(postgres_dsn: str) -> AsyncIterator[PostgresOutbox]:
    """A reader whose pages (4 events) and per-subscriber queues (8 events) are tiny, so a few
    dozen events exercise paging and the queue bound."""
    other = PostgresOutbox(postgres_dsn, subscribe_page=4, subscriber_queue=8)
    try:
        yield other
    finally:
        await other.close()


@pytest.fixture
async def reader(postgres_dsn: str) -> AsyncIterator[PostgresOutbox]:
    """An outbox with default settings used only for subscriptions (another process)."""
    other = PostgresOutbox(postgres_dsn)
    try:
        yield other
    finally:
        await other.close()


async def _commit_each(outbox: PostgresOutbox, stream: str, count: int) -> list[OutboxEvent]:
    """Commit ``count`` events one transaction each; return them as appended."""
    committed = []
    for index in range(count):
        async with outbox.transaction() as tx:
            committed.append(await outbox.append(tx, stream, "step", {"i": index}))
    return committed


async def _collect(
    events: AsyncGenerator[OutboxEvent, None],
    last: int,
    *,
    started: list[int] | None = None,
    gate: asyncio.Event | None = None,
) -> list[OutboxEvent]:
    """Read until seq ``last``. After the first event: note its seq in ``started``, and with
    a ``gate``, stop reading until it opens (a client that stalls)."""
    got: list[OutboxEvent] = []
    try:
        async for event in events:
            got.append(event)
            if event.seq >= last:
                break
            if len(got) == 1:
                if started is not None:
                    started.append(event.seq)
                if gate is not None:
                    await gate.wait()
    finally:
        await events.aclose()
    return got


def _seqs(events: list[OutboxEvent]) -> list[int]:
    return [event.seq for event in events]


async def test_o4_up_to_date_subscribers_are_fed_by_one_shared_read(
    outbox: PostgresOutbox, reader: PostgresOutbox
) -> None:
    """O4: once subscribers are at the head of their stream, every later event reaches all of
    them from one read: they receive the very same event objects, each exactly once, in order,
    and a subscriber of another stream gets only its own."""
    subs = [reader.subscribe("run") for _ in range(10)]
    other = reader.subscribe("other")
    firsts = [asyncio.ensure_future(anext(events)) for events in [*subs, other]]
    await append_many(outbox, "run", 1)
    await append_many(outbox, "other", 1)
    heads = await asyncio.wait_for(asyncio.gather(*firsts), DEADLINE)
    assert [(event.stream, event.seq) for event in heads] == [("run", 1)] * 10 + [("other", 1)]

    tasks = [asyncio.ensure_future(_collect(events, 31)) for events in subs]
    other_task = asyncio.ensure_future(_collect(other, 11))
    run_events = await _commit_each(outbox, "run", 30)
    other_events = await _commit_each(outbox, "other", 10)
    received = await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE)
    other_received = await asyncio.wait_for(other_task, DEADLINE)

    for got in received:
        assert [event.id for event in got] == [event.id for event in run_events]
        assert all(mine is first for mine, first in zip(got, received[0], strict=True)), (
            "subscribers at the head were fed by reads of their own, not one shared read"
        )
    assert [event.id for event in other_received] == [event.id for event in other_events]


async def test_o4_behind_slow_and_late_subscribers_each_get_every_event_once_in_order(
    outbox: PostgresOutbox, small_reads: PostgresOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O4: with up-to-date subscribers sharing reads, one that starts far behind catches up on
    its own, one that stalls past its queue bound falls back to its own reads, and one that
    joins mid-stream starts where it asked: each gets every event exactly once, in order."""
    count = QueryCount(monkeypatch)
    stored = await _commit_each(outbox, "run", 6)
    last = 7 + 60
    started: list[int] = []
    live = [
        asyncio.ensure_future(_collect(small_reads.subscribe("run", 7), last, started=started))
        for _ in range(6)
    ]
    gate = asyncio.Event()
    slow = asyncio.ensure_future(
        _collect(small_reads.subscribe("run", 7), last, started=started, gate=gate)
    )
    # Once each has read seq 7 they are all at the head: one group, one shared read.
    stored += await _commit_each(outbox, "run", 1)
    await wait_for(lambda: len(started) == 7, timeout=DEADLINE, message="7 subscribers at seq 7")
    assert started == [7] * 7
    behind = asyncio.ensure_future(_collect(small_reads.subscribe("run", 1), last))

    first_half = await _commit_each(outbox, "run", 30)
    late = asyncio.ensure_future(_collect(small_reads.subscribe("run", 20), last))
    second_half = await _commit_each(outbox, "run", 30)
    committed = [event.id for event in [*stored, *first_half, *second_half]]

    for task in [*live, behind, late]:
        got = await asyncio.wait_for(task, DEADLINE)
        first = got[0].seq
        assert _seqs(got) == list(range(first, last + 1))
        assert [event.id for event in got] == committed[first - 1 :]
    assert _seqs(await asyncio.wait_for(behind, DEADLINE))[0] == 1
    assert _seqs(await asyncio.wait_for(late, DEADLINE))[0] == 20

    own_reads = count.names["read_stream"]
    gate.set()
    got = await asyncio.wait_for(slow, DEADLINE)
    assert _seqs(got) == list(range(7, last + 1))
    assert [event.id for event in got] == committed[6:]
    assert count.names["read_stream"] > own_reads, (
        "the stalled subscriber was still fed by the shared read past its queue bound"
    )
    assert count.names["read_streams"] > 0


async def test_o4_a_subscriber_joining_a_busy_stream_misses_nothing(
    outbox: PostgresOutbox, small_reads: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O4: subscribers that join while commits keep coming (concurrent writers) each see a
    gap-free, duplicate-free run from their position to the end."""
    last = 80
    early = asyncio.ensure_future(_collect(small_reads.subscribe("run", 1), last))

    async def writer() -> None:
        for _ in range(10):
            await append_many(outbox, "run", 2)

    writers = [asyncio.ensure_future(writer()) for _ in range(4)]
    joiners = []
    for start, committed in ((1, 10), (5, 30), (30, 50)):

        async def reached(committed: int = committed) -> bool:
            head = await db.fetchval(
                "SELECT last_seq FROM portside_outbox_streams WHERE stream = 'run'"
            )
            return head is not None and head >= committed

        await wait_until(reached, f"{committed} events committed")
        joiners.append(asyncio.ensure_future(_collect(small_reads.subscribe("run", start), last)))
    await asyncio.wait_for(asyncio.gather(*writers), DEADLINE)
    for task, start in zip([early, *joiners], (1, 1, 5, 30), strict=True):
        assert _seqs(await asyncio.wait_for(task, DEADLINE)) == list(range(start, last + 1))


async def test_o4_a_subscriber_ahead_of_the_stream_does_not_hold_back_one_at_the_head(
    outbox: PostgresOutbox, small_reads: PostgresOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O4: a subscriber waiting for a seq far past the head (e.g. a stale Last-Event-ID of a
    recreated stream) and one at the head share the stream: the one at the head gets every
    new event, the other only those from its position, and neither reads in a busy loop."""
    count = QueryCount(monkeypatch)
    await _commit_each(outbox, "run", 10)
    started: list[int] = []
    ahead = asyncio.ensure_future(_collect(small_reads.subscribe("run", 30), 35))
    at_head = asyncio.ensure_future(_collect(small_reads.subscribe("run", 11), 35, started=started))
    await _commit_each(outbox, "run", 1)
    await wait_for(lambda: started == [11], timeout=DEADLINE, message="seq 11 at the head")
    await append_many(outbox, "run", 24)
    assert _seqs(await asyncio.wait_for(at_head, DEADLINE)) == list(range(11, 36))
    assert _seqs(await asyncio.wait_for(ahead, DEADLINE)) == list(range(30, 36))
    assert count.names["read_stream"] < 20, f"own reads in a loop: {count.names}"
