"""S4: the outbox follows a promoted standby through a multi-host DSN and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxEvent
from portside.testing import wait_for
from tests.availability.conftest import PostgresPair
from tests.reliability.outbox_load import EventWriter, Subscriber, read_stored

WRITERS = 2
EVENTS = 600
FAIL_AT = 200


async def _follow(outbox: PostgresOutbox, stream: str, into: list[OutboxEvent]) -> None:
    async for event in outbox.subscribe(stream):
        into.append(event)


async def test_s4_promoting_the_standby_under_writes_loses_no_committed_event(
    postgres_pair: PostgresPair, record_property: object
) -> None:
    """S4: two writers append events through `postgresql://primary,standby/...?
    target_session_attrs=read-write` while the publisher delivers them and `subscribe()`
    follows a stream. After 200 events the primary is SIGKILLed and the standby promoted.
    Every committed event is stored on the new primary, delivered to the handler and
    yielded by the subscription, with no gap; the publisher reconnects on its own."""
    dsn = postgres_pair.dsn
    outbox = PostgresOutbox(dsn, connect_timeout=2.0)
    subscriber = Subscriber("a")
    outbox.add_handler(subscriber)
    errors: list[BaseException] = []
    await outbox.start(on_error=errors.append)
    streams = [f"run-{n}" for n in range(10)]
    followed: list[OutboxEvent] = []
    follower = asyncio.create_task(_follow(outbox, streams[0], followed))

    async def writable() -> bool:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    writers = [
        EventWriter(f"w{n}", outbox, streams, writable, deadline=60, seed=n) for n in range(WRITERS)
    ]
    share = EVENTS // WRITERS
    writing = [asyncio.create_task(writer.write(share)) for writer in writers]

    def confirmed() -> int:
        return sum(len(writer.confirmed) for writer in writers)

    try:
        await wait_for(lambda: confirmed() >= FAIL_AT, timeout=60, message="200 events")
        at_failure = confirmed()
        killed_at = time.monotonic()
        postgres_pair.primary.kill()
        postgres_pair.standby.promote()
        promoted_in = time.monotonic() - killed_at
        await wait_for(
            lambda: confirmed() > at_failure, timeout=60, message="a commit on the new primary"
        )
        writes_resumed = time.monotonic() - killed_at
        await asyncio.gather(*writing)
    finally:
        for task in writing:
            task.cancel()
        await asyncio.gather(*writing, return_exceptions=True)
    stored = await read_stored(dsn)

    async def delivered_everything() -> bool:
        return subscriber.seen >= stored.ids and await outbox.pending() == 0

    await wait_for(
        delivered_everything,
        timeout=60,
        message="the handler to receive every stored event, all marked published",
        interval=0.2,
    )
    first_stream = sorted(stored.seqs.get(streams[0], []))
    await wait_for(
        lambda: len({event.id for event in followed}) >= len(first_stream),
        timeout=60,
        message=f"subscribe({streams[0]!r}) to yield all {len(first_stream)} events",
    )
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower
    await outbox.close()

    confirmed_tokens = set().union(*(writer.confirmed for writer in writers))
    lost = confirmed_tokens - stored.tokens
    figures = {
        "committed": len(confirmed_tokens),
        "in_doubt": len(set().union(*(writer.in_doubt for writer in writers))),
        "stored": len(stored.ids),
        "lost": len(lost),
        "seconds_to_promote": round(promoted_in, 2),
        "seconds_to_first_commit": round(writes_resumed, 2),
    }
    for key, value in figures.items():
        record_property(key, value)  # type: ignore[operator]
    print(f"S4 failover figures: {figures}")
    assert not lost, sorted(lost)[:10]
    assert not stored.gaps(), stored.gaps()[:5]
    assert not subscriber.order_errors, subscriber.order_errors[:5]
    followed_seqs = sorted({event.seq for event in followed})
    assert followed_seqs == list(range(1, len(first_stream) + 1))
