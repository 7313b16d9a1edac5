"""O5, O6: backends terminated and Postgres restarted under the outbox publisher lose nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxEvent
from portside.servers import LocalPostgres
from portside.testing import WaitTimeout, wait_for
from tests.reliability.conftest import Figures
from tests.reliability.faults import PostgresFaults
from tests.reliability.outbox_load import EventWriter, Subscriber, read_stored
from tests.reliability.scale import Scale

pytestmark = pytest.mark.reliability

WRITERS = 4


@pytest.fixture
async def outbox(private_postgres: LocalPostgres) -> AsyncIterator[PostgresOutbox]:
    adapter = PostgresOutbox(private_postgres.dsn, connect_timeout=2.0)
    try:
        yield adapter
    finally:
        await adapter.close()


async def _follow(outbox: PostgresOutbox, stream: str, into: list[OutboxEvent]) -> None:
    """A live ``subscribe()`` reader of one stream, kept open through every fault."""
    async for event in outbox.subscribe(stream):
        into.append(event)


async def test_o5_postgres_faults_under_the_publisher_lose_no_committed_event(
    private_postgres: LocalPostgres,
    outbox: PostgresOutbox,
    scale: Scale,
    figures: Figures,
) -> None:
    """Four writers commit events to many streams while the publisher delivers them to two
    subscribers; every client backend is terminated four times, the server is SIGKILLed and
    restarted once (crash recovery) and restarted once (fast shutdown). Every committed event
    reaches each subscriber, redeliveries only repeat events already delivered, and every
    stream arrives gap-free in seq order."""
    faults = PostgresFaults(private_postgres)
    subscribers = [Subscriber("a"), Subscriber("b")]
    for subscriber in subscribers:
        outbox.add_handler(subscriber)
    errors: list[BaseException] = []
    await outbox.start(on_error=errors.append)
    streams = [f"run-{n}" for n in range(scale.postgres_fault_streams)]
    followed: list[OutboxEvent] = []
    follower = asyncio.create_task(_follow(outbox, streams[0], followed))
    writers = [
        EventWriter(f"w{n}", outbox, streams, faults.accepts_connections, scale.deadline, seed=n)
        for n in range(WRITERS)
    ]
    total = scale.postgres_fault_events
    share = -(-total // WRITERS)
    began = time.monotonic()
    writing = [asyncio.create_task(writer.write(share)) for writer in writers]

    def confirmed() -> int:
        return sum(len(writer.confirmed) for writer in writers)

    def failed_commits() -> int:
        return sum(sum(writer.failures.values()) for writer in writers)

    try:
        await _inject(faults, confirmed, failed_commits, share * WRITERS, writing)
        await asyncio.gather(*writing)
    finally:
        for task in writing:
            task.cancel()
        await asyncio.gather(*writing, return_exceptions=True)
    stored = await read_stored(private_postgres.dsn)

    async def delivered_everything() -> bool:
        received = all(subscriber.seen >= stored.ids for subscriber in subscribers)
        return received and await outbox.pending() == 0

    await wait_for(
        delivered_everything,
        timeout=scale.deadline,
        message="both subscribers to receive every committed event, all marked published",
        interval=0.2,
    )
    drained_in = time.monotonic() - began
    first_stream = sorted(stored.seqs[streams[0]])

    def follower_caught_up() -> bool:
        return follower.done() or len({event.id for event in followed}) >= len(first_stream)

    try:
        await wait_for(
            follower_caught_up,
            timeout=scale.deadline,
            message=f"subscribe({streams[0]!r}) to yield all {len(first_stream)} events",
        )
    except WaitTimeout as timeout:
        seqs = [event.seq for event in followed]
        raise AssertionError(
            f"{timeout}; it yielded {len(seqs)} events, the last ones {seqs[-5:]}; the stream "
            f"has seqs 1..{len(first_stream)}; outbox errors: {errors[-3:]!r}"
        ) from None
    assert not follower.done(), f"subscribe() ended: {follower.exception()!r}"
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower

    confirmed_tokens = set().union(*(writer.confirmed for writer in writers))
    in_doubt = set().union(*(writer.in_doubt for writer in writers))
    lost = confirmed_tokens - stored.tokens
    assert not lost, f"{len(lost)} confirmed events are missing from the table"
    assert stored.tokens <= confirmed_tokens | in_doubt, "an event nobody wrote appeared"
    assert not stored.gaps(), f"streams with seq gaps: {stored.gaps()[:5]}"
    for subscriber in subscribers:
        assert subscriber.seen == stored.ids, f"subscriber {subscriber.name} missed events"
        assert not subscriber.order_errors, subscriber.order_errors[:5]
        assert not subscriber.changed_redeliveries()
        for stream, seqs in subscriber.distinct_per_stream().items():
            assert seqs == list(range(1, len(stored.seqs[stream]) + 1)), stream
    assert [event.seq for event in followed] == first_stream, "subscribe() skipped or repeated"
    assert sum(faults.injected.values()) == 6
    figures.update(
        events_confirmed=len(confirmed_tokens),
        events_in_doubt=len(in_doubt),
        in_doubt_committed=len(stored.tokens & in_doubt),
        events_stored=len(stored.ids),
        lost=len(lost),
        streams=len(stored.seqs),
        delivered_per_subscriber=[len(s.seen) for s in subscribers],
        redeliveries=[s.redeliveries for s in subscribers],
        followed_by_subscribe=len(followed),
        faults=dict(faults.injected),
        backends_terminated=faults.backends_terminated,
        commits_failed=failed_commits(),
        publisher_errors_reported=len(errors),
        seconds_to_deliver=round(drained_in, 1),
    )


async def _inject(
    faults: PostgresFaults,
    progress: Callable[[], int],
    failed_commits: Callable[[], int],
    total: int,
    writing: list[asyncio.Task[None]],
) -> None:
    """Faults at set points of the writing, while the publisher delivers."""

    def writer_crashed() -> bool:
        return any(task.done() and task.exception() is not None for task in writing)

    def raise_if_crashed() -> None:
        for task in writing:
            if task.done() and task.exception() is not None:
                raise AssertionError("a writer failed unexpectedly") from task.exception()

    async def writers_failed() -> None:
        before = failed_commits()
        await wait_for(
            lambda: writer_crashed() or failed_commits() > before,
            timeout=60,
            message="a writer's commit to fail while Postgres is down",
        )
        raise_if_crashed()

    async def crash() -> None:
        await faults.crash_and_restart(while_down=writers_failed)

    plan: list[tuple[float, Callable[[], Awaitable[object]]]] = [
        (0.10, faults.terminate_backends),
        (0.25, faults.terminate_backends),
        (0.40, crash),
        (0.55, faults.terminate_backends),
        (0.70, faults.restart),
        (0.85, faults.terminate_backends),
    ]
    for fraction, inject in plan:
        target = int(total * fraction)
        await wait_for(
            lambda target=target: writer_crashed() or progress() >= target,  # type: ignore[misc]
            timeout=120,
            message=f"{target} confirmed events before the next fault",
        )
        raise_if_crashed()
        await inject()
