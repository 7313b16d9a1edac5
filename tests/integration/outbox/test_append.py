"""Appending in the caller's transaction: atomicity, validation and gap-free seq (O1, O4)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import ValidationError

pytestmark = pytest.mark.integration


async def _rows(db: asyncpg.Connection) -> list[tuple[str, int]]:
    return [
        (row["stream"], row["seq"])
        for row in await db.fetch("SELECT stream, seq FROM portside_outbox_events ORDER BY 1, 2")
    ]


async def test_o1_rollback_leaves_no_event_and_publishes_nothing(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O1: a rolled-back transaction leaves no event, and draining delivers nothing."""
    delivered = []

    async def handler(event: object) -> None:
        delivered.append(event)

    outbox.add_handler(handler)

    class Abort(Exception):
        pass

    async def append_then_abort() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run-1", "step", {"n": 1})
            raise Abort

    with pytest.raises(Abort):
        await append_then_abort()

    assert await _rows(db) == []
    assert await outbox.drain_once() == 0
    assert delivered == []
    assert await outbox.pending() == 0


async def test_o1_event_commits_with_the_callers_own_writes(
    outbox: PostgresOutbox, db: asyncpg.Connection, postgres_dsn: str
) -> None:
    """O1: append works on the caller's own connection; both writes commit together."""
    await db.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn = await asyncpg.connect(postgres_dsn)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (1)")
            event = await outbox.append(conn, "orders", "order.created", {"id": 1}, key="1")
    finally:
        await conn.close()
    assert (event.stream, event.seq, event.key, event.published_at) == ("orders", 1, "1", None)
    assert await db.fetchval("SELECT count(*) FROM orders") == 1
    assert await _rows(db) == [("orders", 1)]


async def test_o1_append_outside_a_transaction_is_refused(
    outbox: PostgresOutbox, db: asyncpg.Connection, postgres_dsn: str
) -> None:
    """O1: an autocommit connection would make the event independent of the caller's writes."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        with pytest.raises(ValidationError, match="not inside a transaction") as info:
            await outbox.append(conn, "run-1", "step", {})
    finally:
        await conn.close()
    assert info.value.field == "tx"
    with pytest.raises(ValidationError, match="asyncpg connection"):
        await outbox.append(object(), "run-1", "step", {})
    assert await _rows(db) == []


@pytest.mark.parametrize(
    ("stream", "type_", "payload", "key", "field"),
    [
        ("run-1", "step", {"when": object()}, None, "payload.when"),
        ("run-1", "step", {"n": float("nan")}, None, "payload.n"),
        ("run-1", "step", {"text": "nul\x00byte"}, None, "payload.text"),
        ("run-1", "step", ["not", "an", "object"], None, "payload"),
        ("", "step", {}, None, "stream"),
        ("run-1", "", {}, None, "type"),
        ("run-1", "step", {}, 42, "key"),
    ],
)
async def test_o1_bad_input_fails_before_anything_is_written(
    outbox: PostgresOutbox,
    db: asyncpg.Connection,
    stream: str,
    type_: str,
    payload: object,
    key: object,
    field: str,
) -> None:
    """O1: bad input raises a ValidationError naming the field; the transaction stays usable."""
    async with outbox.transaction() as tx:
        with pytest.raises(ValidationError) as info:
            await outbox.append(tx, stream, type_, payload, key=key)  # type: ignore[arg-type]
        assert info.value.field == field
        # Nothing reached the server, so the caller's transaction is not aborted.
        await outbox.append(tx, "run-1", "step", {"ok": True})
    assert await _rows(db) == [("run-1", 1)]
    assert await db.fetchval("SELECT last_seq FROM portside_outbox_streams") == 1


async def test_o4_eight_concurrent_connections_get_gap_free_seq(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O4: 8 connections appending to one stream at once, some rolling back: seq 1..N."""
    writers, rounds, per_tx = 8, 6, 5
    barrier = asyncio.Barrier(writers)
    committed = 0

    class Abort(Exception):
        pass

    async def writer(index: int) -> None:
        nonlocal committed
        for attempt in range(rounds):
            rollback = (index + attempt) % 3 == 0
            try:
                async with outbox.transaction() as tx:
                    await barrier.wait()  # all 8 transactions are open before anyone appends
                    for _ in range(per_tx):
                        await outbox.append(tx, "shared", "tick", {"writer": index})
                    if rollback:
                        raise Abort
            except Abort:
                continue
            committed += per_tx

    await asyncio.gather(*(writer(index) for index in range(writers)))
    seqs = [seq for _, seq in await _rows(db)]
    assert committed > 0
    assert seqs == list(range(1, committed + 1))
    # Each transaction's events are consecutive: a transaction holds the counter row.
    rows = await db.fetch(
        "SELECT seq, payload->>'writer' AS writer FROM portside_outbox_events ORDER BY seq"
    )
    runs = [rows[i : i + per_tx] for i in range(0, len(rows), per_tx)]
    assert all(len({row["writer"] for row in run}) == 1 for run in runs)


async def test_o4_opposite_stream_order_deadlock_is_detected_and_leaves_no_gap(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O4: two transactions appending to streams a/b in opposite orders wait on each other's
    counter rows; Postgres aborts one, the other commits, and seq stays gap-free."""
    both_hold_one = asyncio.Barrier(2)

    async def append_pair(first: str, second: str) -> str:
        async with outbox.transaction() as tx:
            await outbox.append(tx, first, "step", {})
            await both_hold_one.wait()
            await outbox.append(tx, second, "step", {})
        return first

    results = await asyncio.gather(
        append_pair("a", "b"), append_pair("b", "a"), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], asyncpg.DeadlockDetectedError)
    assert await _rows(db) == [("a", 1), ("b", 1)]
    async with outbox.transaction() as tx:
        await outbox.append(tx, "a", "step", {})
        await outbox.append(tx, "b", "step", {})
    assert await _rows(db) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]


async def test_obs1_the_trace_context_is_stored_read_back_and_delivered(
    outbox: PostgresOutbox,
) -> None:
    """OBS1: an append's trace context (migration 0014) reaches the handlers and the
    subscribers with the event; an event appended without one has None."""
    carried = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    delivered = []

    async def handler(event: object) -> None:
        delivered.append(event)

    outbox.add_handler(handler)
    async with outbox.transaction() as tx:
        appended = await outbox.append(tx, "run-t", "step", {"n": 1}, trace_context=carried)
        await outbox.append(tx, "run-t", "step", {"n": 2})
    assert appended.trace_context == carried
    assert await outbox.drain_once("run-t") == 2
    assert [event.trace_context for event in delivered] == [carried, None]  # type: ignore[attr-defined]
    replayed = outbox.subscribe("run-t", 1)
    try:
        first = await anext(replayed)
    finally:
        await replayed.aclose()
    assert first.trace_context == carried
