"""Outbox benchmark: commit-to-delivery latency, publisher throughput, NOTIFY trigger cost.

Usage: python benchmarks/outbox.py [--quick] [--dsn postgresql://...]

Starts a private Postgres (portside.servers.LocalPostgres: fsync off, synchronous_commit on,
shared_buffers 256 MB) unless --dsn is given, and measures in one run, each against a
baseline from the same run:

1. Latency at a fixed rate (1,000 events/s, one event per transaction, producer in another
   process): the push publisher (LISTEN/NOTIFY) against a 200 ms polling publisher, the
   design the outbox replaces.
2. Publisher throughput on a committed backlog: one publisher over 100 streams (baseline),
   one publisher on a single stream, and two publishers in separate processes.
3. Sustained: producers append as fast as they can while one publisher runs.
4. Commit throughput of appends with no trigger (baseline), with portside's trigger
   (constant payload, once per statement) and with a naive per-row trigger whose payload
   is the event id (Postgres cannot fold those); on that server and on a second one with
   fsync on, where NOTIFY's commit-time lock meets the WAL flush.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import asyncpg

from portside.adapters.postgres import PostgresOutbox, migrate
from portside.ports import OutboxEvent

LATENCY_RATE = 1_000
POLL_INTERVAL = 0.2
STREAMS = 100
PAYLOAD = {"run": "0d6c1c9e-agent-run", "step": "tool_call", "tokens": 1234, "ok": True}


@dataclass(frozen=True)
class Plan:
    latency_seconds: float
    poll_seconds: float
    backlog: int
    sustained_seconds: float
    commit_seconds: float


FULL = Plan(
    latency_seconds=8, poll_seconds=3, backlog=100_000, sustained_seconds=8, commit_seconds=4
)
QUICK = Plan(
    latency_seconds=3, poll_seconds=2, backlog=20_000, sustained_seconds=3, commit_seconds=2
)


# ---------------------------------------------------------------- servers and databases


# On top of the harness's test settings: shared_buffers big enough for a 100,000-event backlog
# and its indexes, and synchronous_commit on as in production (with it off, hint bits and
# dead index entries are set late, and the publisher's scans slow down; see docs/outbox.md).
FAST = {"shared_buffers": "256MB", "synchronous_commit": "on"}
DURABLE = {**FAST, "fsync": "on", "full_page_writes": "on"}


@contextlib.contextmanager
def server(dsn: str | None, settings: dict[str, str] | None = None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from portside.servers import LocalPostgres

    with LocalPostgres(settings=settings or FAST) as pg:
        yield pg.dsn


async def fresh_database(admin_dsn: str) -> str:
    name = f"outbox_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = admin_dsn.rsplit("/", 1)[0] + "/" + name
    await migrate(dsn)
    return dsn


async def drop_database(admin_dsn: str, dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# ---------------------------------------------------------------- child processes


def _paced_producer(dsn: str, rate: float, seconds: float, go: MpEvent, out: Connection) -> None:
    """Append one event per transaction at ``rate``; send back each commit's timestamp."""

    async def run() -> list[float]:
        outbox = PostgresOutbox(dsn, pool_min_size=2, pool_max_size=2)
        async with outbox.transaction():
            pass  # open the pool before the clock starts
        out.send("ready")
        go.wait()
        committed: list[float] = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for index in range(total):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with outbox.transaction() as tx:
                await outbox.append(tx, "latency", "bench", {**PAYLOAD, "i": index})
            committed.append(time.perf_counter())
        await outbox.close()
        return committed

    out.send(asyncio.run(run()))


def _flood_producer(
    dsn: str, connections: int, per_tx: int, seconds: float, go: MpEvent, out: Connection
) -> None:
    """Append as fast as possible from ``connections`` connections; send back the count."""

    async def run() -> int:
        outbox = PostgresOutbox(dsn, pool_min_size=connections, pool_max_size=connections)
        async with outbox.transaction():
            pass
        out.send("ready")
        go.wait()
        deadline = time.perf_counter() + seconds
        counts = [0] * connections

        async def worker(slot: int) -> None:
            # One stream per transaction, like a run writing its own events: transactions
            # appending to several streams in different orders can deadlock on the counters.
            n = 0
            while time.perf_counter() < deadline:
                stream = f"stream-{(slot * 7919 + n) % STREAMS}"
                async with outbox.transaction() as tx:
                    for _ in range(per_tx):
                        await outbox.append(tx, stream, "bench", PAYLOAD)
                        n += 1
                counts[slot] = n

        await asyncio.gather(*(worker(slot) for slot in range(connections)))
        await outbox.close()
        return sum(counts)

    out.send(asyncio.run(run()))


def _publisher(dsn: str, go: MpEvent, stop: MpEvent, out: Connection) -> None:
    """Run one publisher from ``go`` until ``stop``; send back (count, last delivery time)."""

    async def run() -> tuple[int, float]:
        outbox = PostgresOutbox(dsn)
        delivered = 0
        last = 0.0

        async def handler(event: OutboxEvent) -> None:
            nonlocal delivered, last
            delivered += 1
            last = time.perf_counter()

        outbox.add_handler(handler)
        await outbox.pending()  # open the pool before the clock starts
        out.send("ready")
        await asyncio.to_thread(go.wait)
        await outbox.start()
        await asyncio.to_thread(stop.wait)
        await outbox.close()
        return delivered, last

    out.send(asyncio.run(run()))


def spawn(target: Callable[..., None], *args: Any) -> tuple[mp.process.BaseProcess, Connection]:
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(*args, send), daemon=True)
    proc.start()
    return proc, receive


async def all_ready(children: list[tuple[mp.process.BaseProcess, Connection]]) -> None:
    """Wait until every child has connected and said so (their first message)."""
    for _, receive in children:
        message = await asyncio.to_thread(receive.recv)
        if message != "ready":
            raise RuntimeError(f"child sent {message!r} instead of 'ready'")


# ---------------------------------------------------------------- 1. latency


async def latency_push(dsn: str, plan: Plan) -> list[float]:
    outbox = PostgresOutbox(dsn)
    delivered: dict[int, float] = {}

    async def handler(event: OutboxEvent) -> None:
        delivered[event.payload["i"]] = time.perf_counter()

    outbox.add_handler(handler)
    await outbox.start()
    go = mp.get_context("spawn").Event()
    proc, receive = spawn(_paced_producer, dsn, LATENCY_RATE, plan.latency_seconds, go)
    await all_ready([(proc, receive)])
    go.set()
    committed: list[float] = await asyncio.to_thread(receive.recv)
    proc.join()
    while len(delivered) < len(committed):
        await asyncio.sleep(0.01)
    await outbox.close()
    return [(delivered[i] - t) * 1000 for i, t in enumerate(committed)]


async def latency_polling(dsn: str, plan: Plan) -> list[float]:
    outbox = PostgresOutbox(dsn)
    delivered: dict[int, float] = {}

    async def handler(event: OutboxEvent) -> None:
        delivered[event.payload["i"]] = time.perf_counter()

    outbox.add_handler(handler)
    go = mp.get_context("spawn").Event()
    proc, receive = spawn(_paced_producer, dsn, LATENCY_RATE, plan.poll_seconds, go)
    await all_ready([(proc, receive)])
    go.set()
    result: list[list[float]] = []
    receiver = asyncio.ensure_future(asyncio.to_thread(receive.recv))
    while not (receiver.done() and len(delivered) >= len(receiver.result())):
        await outbox.drain_once()
        await asyncio.sleep(POLL_INTERVAL)
    result.append(receiver.result())
    proc.join()
    await outbox.close()
    return [(delivered[i] - t) * 1000 for i, t in enumerate(result[0])]


# ---------------------------------------------------------------- 2. backlog throughput


async def prefill(dsn: str, events: int, streams: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO portside_outbox_events (stream, seq, type, payload) "
            "SELECT 'stream-' || (g % $2), g / $2 + 1, 'bench', $3::text::jsonb "
            "FROM generate_series(0, $1 - 1) AS g",
            events,
            streams,
            json.dumps(PAYLOAD),
        )
        await conn.execute(
            "INSERT INTO portside_outbox_streams (stream, last_seq) "
            "SELECT stream, max(seq) FROM portside_outbox_events GROUP BY stream"
        )
        await conn.execute("VACUUM ANALYZE portside_outbox_events")
    finally:
        await conn.close()


async def backlog_throughput(admin: str, plan: Plan, publishers: int, streams: int) -> float:
    dsn = await fresh_database(admin)
    try:
        await prefill(dsn, plan.backlog, streams)
        ctx = mp.get_context("spawn")
        go, stop = ctx.Event(), ctx.Event()
        children = [spawn(_publisher, dsn, go, stop) for _ in range(publishers)]
        await all_ready(children)
        conn = await asyncpg.connect(dsn)
        start = time.perf_counter()
        go.set()
        while await conn.fetchval(
            "SELECT count(*) FROM portside_outbox_events WHERE published_at IS NULL"
        ):
            await asyncio.sleep(0.25)  # the end time comes from the children, not from here
        await conn.close()
        stop.set()
        results: list[tuple[int, float]] = [receive.recv() for _, receive in children]
        for proc, _ in children:
            proc.join()
        total = sum(count for count, _ in results)
        if total != plan.backlog:
            raise SystemExit(f"delivered {total} events, expected {plan.backlog}")
        return plan.backlog / (max(last for _, last in results) - start)
    finally:
        await drop_database(admin, dsn)


# ---------------------------------------------------------------- 3. sustained


async def sustained(admin: str, plan: Plan) -> tuple[float, float, int]:
    dsn = await fresh_database(admin)
    try:
        ctx = mp.get_context("spawn")
        go, stop = ctx.Event(), ctx.Event()
        publisher = spawn(_publisher, dsn, go, stop)
        producers = [
            spawn(_flood_producer, dsn, 4, 20, plan.sustained_seconds, go) for _ in range(2)
        ]
        await all_ready([publisher, *producers])
        start = time.perf_counter()
        go.set()
        produced = sum(await asyncio.gather(*(asyncio.to_thread(r.recv) for _, r in producers)))
        elapsed = time.perf_counter() - start
        conn = await asyncpg.connect(dsn)
        backlog = await conn.fetchval(
            "SELECT count(*) FROM portside_outbox_events WHERE published_at IS NULL"
        )
        await conn.close()
        stop.set()
        delivered, _ = publisher[1].recv()
        for proc, _ in [*producers, publisher]:
            proc.join()
        return produced / elapsed, delivered / elapsed, backlog
    finally:
        await drop_database(admin, dsn)


# ---------------------------------------------------------------- 4. commit throughput

PER_ROW_TRIGGER = """
CREATE FUNCTION bench_notify_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portside_outbox', NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER bench_notify_row AFTER INSERT ON portside_outbox_events
    FOR EACH ROW EXECUTE FUNCTION bench_notify_row();
"""


async def commit_rate(dsn: str, seconds: float, per_tx: int, connections: int = 8) -> float:
    outbox = PostgresOutbox(dsn, pool_min_size=connections, pool_max_size=connections)
    async with outbox.transaction():
        pass
    deadline = time.perf_counter() + seconds
    commits = 0

    async def worker(slot: int) -> None:
        nonlocal commits
        n = 0
        while time.perf_counter() < deadline:
            # Each connection its own streams: measure the trigger, not counter-row waits.
            stream = f"stream-{slot}-{n % 10}"
            async with outbox.transaction() as tx:
                for _ in range(per_tx):
                    await outbox.append(tx, stream, "bench", PAYLOAD)
            n += 1
            commits += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(connections)))
    elapsed = time.perf_counter() - start
    await outbox.close()
    return commits / elapsed


def _listen_only(dsn: str, stop: MpEvent, out: Connection) -> None:
    """LISTEN on the outbox channel until ``stop``: NOTIFY costs nothing without a listener."""

    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        received = 0

        def count(*args: object) -> None:
            nonlocal received
            received += 1

        await conn.add_listener("portside_outbox", count)
        out.send("ready")
        await asyncio.to_thread(stop.wait)
        await conn.close()
        return received

    out.send(asyncio.run(run()))


TRIGGER_VARIANTS = {
    "no trigger": (
        "DISABLE TRIGGER portside_outbox_events_notify",
        "DISABLE TRIGGER bench_notify_row",
    ),
    "portside trigger": (
        "ENABLE TRIGGER portside_outbox_events_notify",
        "DISABLE TRIGGER bench_notify_row",
    ),
    "per-row id payload": (
        "DISABLE TRIGGER portside_outbox_events_notify",
        "ENABLE TRIGGER bench_notify_row",
    ),
}


async def trigger_cost(admin: str, plan: Plan, per_tx: int, rounds: int = 3) -> dict[str, float]:
    """Best of ``rounds`` interleaved runs per variant, so a noisy neighbour hits all alike."""
    dsn = await fresh_database(admin)
    try:
        conn = await asyncpg.connect(dsn)
        await conn.execute(PER_ROW_TRIGGER)
        stop = mp.get_context("spawn").Event()
        listener = spawn(_listen_only, dsn, stop)
        await all_ready([listener])
        rates: dict[str, float] = dict.fromkeys(TRIGGER_VARIANTS, 0.0)
        for _ in range(rounds):
            for name, statements in TRIGGER_VARIANTS.items():
                for statement in statements:
                    await conn.execute(f"ALTER TABLE portside_outbox_events {statement}")
                rate = await commit_rate(dsn, plan.commit_seconds, per_tx)
                rates[name] = max(rates[name], rate)
        stop.set()
        listener[1].recv()
        listener[0].join()
        await conn.close()
        return rates
    finally:
        await drop_database(admin, dsn)


# ---------------------------------------------------------------- report


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


async def latency_section(admin: str, plan: Plan) -> None:
    dsn = await fresh_database(admin)
    try:
        push = await latency_push(dsn, plan)
    finally:
        await drop_database(admin, dsn)
    dsn = await fresh_database(admin)
    try:
        poll = await latency_polling(dsn, plan)
    finally:
        await drop_database(admin, dsn)
    base = statistics.mean(poll)
    rows = []
    for name, values in (("polling every 200 ms (baseline)", poll), ("LISTEN/NOTIFY push", push)):
        rows.append(
            [
                name,
                str(len(values)),
                f"{percentile(values, 0.5):.2f}",
                f"{percentile(values, 0.99):.2f}",
                f"{max(values):.2f}",
                f"{statistics.mean(values):.2f}",
                f"{base / statistics.mean(values):.1f}x",
            ]
        )
    print(
        table(
            f"1. commit-to-delivery latency at {LATENCY_RATE} events/s (ms)",
            ["publisher", "events", "p50", "p99", "max", "mean", "mean vs baseline"],
            rows,
        )
    )
    p99 = percentile(push, 0.99)
    print(
        f"   target commit-to-delivery p99 < 5 ms at {LATENCY_RATE} events/s: "
        f"{'met' if p99 < 5 else 'NOT met'} ({p99:.2f} ms)\n",
        flush=True,
    )


async def throughput_section(admin: str, plan: Plan) -> None:
    one = await backlog_throughput(admin, plan, 1, STREAMS)
    single = await backlog_throughput(admin, plan, 1, 1)
    two = await backlog_throughput(admin, plan, 2, STREAMS)
    rows = [
        [f"1 publisher, {STREAMS} streams (baseline)", f"{one:,.0f}", "1.00x"],
        ["1 publisher, 1 stream", f"{single:,.0f}", f"{single / one:.2f}x"],
        [f"2 publishers (2 processes), {STREAMS} streams", f"{two:,.0f}", f"{two / one:.2f}x"],
    ]
    print(
        table(
            f"2. publisher throughput draining a committed backlog of {plan.backlog:,} events",
            ["setup", "events/s", "vs baseline"],
            rows,
        )
    )
    print(
        "   target >= 20,000 events/s with one publisher: "
        f"{'met' if one >= 20_000 else 'NOT met'} ({one:,.0f} events/s)\n",
        flush=True,
    )


async def sustained_section(admin: str, plan: Plan) -> None:
    produced, delivered, backlog = await sustained(admin, plan)
    print(
        table(
            "3. sustained: 2 producer processes x 4 connections x 20 events/tx, 1 publisher",
            ["produced/s", "delivered/s", "backlog at end"],
            [[f"{produced:,.0f}", f"{delivered:,.0f}", f"{backlog:,}"]],
        )
    )
    print(flush=True)


async def trigger_section(admin: str, plan: Plan, label: str) -> None:
    for per_tx in (1, 10):
        rates = await trigger_cost(admin, plan, per_tx)
        baseline = rates["no trigger"]
        rows = [
            [
                f"{name}{' (baseline)' if name == 'no trigger' else ''}",
                f"{rate:,.0f}",
                f"{rate * per_tx:,.0f}",
                f"{rate / baseline:.2f}x",
            ]
            for name, rate in rates.items()
        ]
        print(
            table(
                f"4. commit throughput ({label}), 8 connections, {per_tx} event(s) per "
                "transaction, one LISTEN session in another process, best of 3 interleaved runs",
                ["NOTIFY trigger", "commits/s", "events/s", "vs baseline"],
                rows,
            )
        )
        print(flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, smaller backlog")
    parser.add_argument("--dsn", help="use this server (superuser DSN) instead of a private one")
    parser.add_argument(
        "--sections", default="1,2,3,4", help="comma-separated sections to run (default: all)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    chosen = {part.strip() for part in args.sections.split(",")}
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  plan: {plan}\n")
    sections = [
        ("1", latency_section),
        ("2", throughput_section),
        ("3", sustained_section),
    ]
    with server(args.dsn) as admin:
        for key, section in sections:
            if key in chosen:
                asyncio.run(section(admin, plan))
        if "4" in chosen:
            label = "fsync off" if not args.dsn else "given server"
            asyncio.run(trigger_section(admin, plan, label))
    if not args.dsn and "4" in chosen:
        # NOTIFY holds a database-wide lock until the commit record is flushed, so with
        # durable commits the trigger's cost shows up as lost group commit.
        with server(None, DURABLE) as admin:
            asyncio.run(trigger_section(admin, plan, "fsync on"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
