"""S4: the outbox follows a promoted standby through a multi-host DSN and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from portside.adapters.postgres import PostgresOutbox
from portside.adapters.postgres.history import PostgresHistory
from portside.ports import BackendUnavailableError, FinishedRun, OutboxEvent
from portside.testing import wait_for
from tests.availability.conftest import PostgresPair
from tests.reliability.outbox_load import EventWriter, Subscriber, read_stored

WRITERS = 2
EVENTS = 600
FAIL_AT = 200


class HistoryWriter:
    """Records one finished attempt at a time, as the worker runtime does, until stopped; an
    attempt whose write raised is in doubt and written again under a new job id."""

    def __init__(self, history: PostgresHistory) -> None:
        self.history = history
        self.confirmed: set[str] = set()
        self.in_doubt: set[str] = set()
        self.stop = asyncio.Event()

    async def run(self, writable: Callable[[], Awaitable[bool]]) -> None:
        serial = 0
        while not self.stop.is_set():
            job_id = f"job-{serial}"
            serial += 1
            now = datetime.now(UTC)
            run = FinishedRun(
                job_id=job_id,
                queue="s4",
                name="work",
                attempt=1,
                run_mode="manual",
                started_at=now,
                status="completed",
                finished_at=now,
            )
            try:
                await self.history.record_run(run)
            except BackendUnavailableError:
                self.in_doubt.add(job_id)
                await wait_for(writable, timeout=60, message="Postgres to accept writes")
                continue
            self.confirmed.add(job_id)


async def _stored_runs(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT job_id FROM job_runs WHERE queue = 's4'")
    finally:
        await conn.close()
    return {row["job_id"] for row in rows}


async def _follow(outbox: PostgresOutbox, stream: str, into: list[OutboxEvent]) -> None:
    async for event in outbox.subscribe(stream):
        into.append(event)


async def test_s4_promoting_the_standby_under_writes_loses_no_committed_event(
    postgres_pair: PostgresPair, record_property: object
) -> None:
    """S4: two writers append events through `postgresql://primary,standby/...?
    target_session_attrs=read-write` while the publisher delivers them and `subscribe()`
    follows a stream, and the run history records attempts through the same DSN. After 200
    events the primary is SIGKILLed and the standby promoted. Every committed event is
    stored on the new primary, delivered to the handler and yielded by the subscription,
    with no gap; every confirmed run-history row is there; publisher and history reconnect
    on their own."""
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
    history = PostgresHistory(dsn)
    recorder = HistoryWriter(history)
    recording = asyncio.create_task(recorder.run(writable))

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
        runs_at_end = len(recorder.confirmed)
        await wait_for(
            lambda: len(recorder.confirmed) > runs_at_end,
            timeout=30,
            message="a run-history row on the new primary",
        )
        recorder.stop.set()
        await recording
    finally:
        for task in [*writing, recording]:
            task.cancel()
        await asyncio.gather(*writing, recording, return_exceptions=True)
        await history.close()
    runs_lost = recorder.confirmed - await _stored_runs(dsn)
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
        "history_rows_confirmed": len(recorder.confirmed),
        "history_rows_in_doubt": len(recorder.in_doubt),
        "history_rows_lost": len(runs_lost),
        "seconds_to_promote": round(promoted_in, 2),
        "seconds_to_first_commit": round(writes_resumed, 2),
    }
    for key, value in figures.items():
        record_property(key, value)  # type: ignore[operator]
    print(f"S4 failover figures: {figures}")
    assert not lost, sorted(lost)[:10]
    assert not runs_lost, sorted(runs_lost)[:10]
    assert not stored.gaps(), stored.gaps()[:5]
    assert not subscriber.order_errors, subscriber.order_errors[:5]
    followed_seqs = sorted({event.seq for event in followed})
    assert followed_seqs == list(range(1, len(first_stream) + 1))
