"""SSE fan-out: one run's outbox events streamed by the HTTP API to 100 subscribers vs 1.

Usage: python benchmarks/sse_fanout.py [--quick] [--subscribers 100]

Starts a private Redis and Postgres (``portside.servers``), applies portside's and the examples'
migrations and serves ``create_app`` with the examples' agent runs and ``ApiServer`` (outbox
publisher on, as in the integration tests) in this process. For 1 subscriber (baseline) and
then ``--subscribers``, in the same run:

- ``POST /runs`` creates a run (no worker runs it, so it stays open);
- a client process opens the subscribers on ``GET /runs/{id}/events?from_seq=2`` (raw sockets,
  so client parsing costs little) and waits until each stream has sent its first frame;
- an appender process commits events to the run's stream, one per transaction, recording
  each commit time, then a terminal ``run.completed`` that ends every stream.

Two loads: paced (``--rate`` events/s, for latency) and flood (as fast as one connection
commits, for throughput). Per event, latency is commit -> the last subscriber reading its
frame (CLOCK_MONOTONIC is system-wide on Linux). Delivered events/s counts frames received by
all subscribers, from the first commit to the last frame.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from _common import RedisServer, header, percentile

PAYLOAD = {"step": "tool_call", "tool": "search", "tokens": 1234, "ok": True}


@dataclass(frozen=True)
class Plan:
    paced_events: int
    flood_events: int
    rate: float


FULL = Plan(paced_events=2_000, flood_events=10_000, rate=200)
QUICK = Plan(paced_events=400, flood_events=2_000, rate=200)


@dataclass(frozen=True)
class Outcome:
    subscribers: int
    load: str
    events: int
    deliveries: int
    seconds: float
    latencies: list[float]
    append_rate: float


# ---------------------------------------------------------------- subscriber process


async def _subscriber(
    host: str, port: int, path: str, connected: asyncio.Event, arrivals: dict[int, float]
) -> int:
    """One SSE client: record when each ``id:`` arrives (latest arrival wins); frames read."""
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"GET {path} answered {status!r}")
    frames = 0
    seq = 0
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("the event stream closed before run.completed")
        if line.startswith(b"id: "):
            now = time.monotonic()
            seq = int(line[4:])
            frames += 1
            if arrivals.get(seq, 0.0) < now:
                arrivals[seq] = now
        elif line.startswith(b"retry:"):
            connected.set()
        elif line.startswith(b"event: run.completed"):
            break
    writer.close()
    return frames


def _subscribers(url: str, path: str, count: int, pipe: Connection) -> None:
    """Client process: open ``count`` streams, say "ready", send back arrivals when all end."""

    async def run() -> tuple[dict[int, float], int]:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        arrivals: dict[int, float] = {}
        connected = [asyncio.Event() for _ in range(count)]
        tasks = [
            asyncio.create_task(_subscriber(host, int(port), path, flag, arrivals))
            for flag in connected
        ]
        await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in connected)), 60)
        pipe.send("ready")
        frames = await asyncio.wait_for(asyncio.gather(*tasks), 600)
        return arrivals, sum(frames)

    pipe.send(asyncio.run(run()))


# ---------------------------------------------------------------- appender process


def _appender(dsn: str, stream: str, events: int, rate: float, pipe: Connection) -> None:
    """Append ``events`` then ``run.completed``; send back {seq: commit time} and the rate."""

    async def run() -> tuple[dict[int, float], float]:
        from portside.adapters.postgres import PostgresOutbox

        outbox = PostgresOutbox(dsn, pool_min_size=1, pool_max_size=1)
        async with outbox.transaction():
            pass  # connect before the clock starts
        pipe.send("ready")
        pipe.recv()
        committed: dict[int, float] = {}
        start = time.monotonic()
        for index in range(events + 1):
            if rate:
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            kind = "run.completed" if index == events else "step"
            async with outbox.transaction() as tx:
                event = await outbox.append(tx, stream, kind, {**PAYLOAD, "i": index})
            committed[event.seq] = time.monotonic()
        elapsed = time.monotonic() - start
        await outbox.close()
        return committed, (events + 1) / elapsed

    pipe.send(asyncio.run(run()))


# ---------------------------------------------------------------- one measurement


async def _measure(
    api_url: str, dsn: str, subscribers: int, load: str, events: int, rate: float
) -> Outcome:
    import httpx

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        response = await client.post("/runs", json={"input": f"sse fan-out {load}"})
        response.raise_for_status()
        run_id = response.json()["runId"]
    spawn = mp.get_context("spawn")
    sub_end, sub_child = spawn.Pipe()
    app_end, app_child = spawn.Pipe()
    path = f"/runs/{run_id}/events?from_seq=2"
    clients = spawn.Process(target=_subscribers, args=(api_url, path, subscribers, sub_child))
    appender = spawn.Process(target=_appender, args=(dsn, run_id, events, rate, app_child))
    clients.start()
    appender.start()
    try:
        for end, who in ((sub_end, "subscribers"), (app_end, "appender")):
            said = await asyncio.to_thread(_receive, end, 120, who)
            if said != "ready":
                raise SystemExit(f"the {who} process did not get ready: {said!r}")
        app_end.send("go")
        committed, append_rate = await asyncio.to_thread(_receive, app_end, 600, "appender")
        arrivals, deliveries = await asyncio.to_thread(_receive, sub_end, 600, "subscribers")
    finally:
        for process in (clients, appender):
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    missing = sorted(set(committed) - set(arrivals))
    if missing:
        raise SystemExit(f"{len(missing)} events never reached a subscriber (first {missing[0]})")
    latencies = [(arrivals[seq] - at) * 1000 for seq, at in committed.items()]
    seconds = max(arrivals.values()) - min(committed.values())
    return Outcome(subscribers, load, len(committed), deliveries, seconds, latencies, append_rate)


def _receive(end: Connection, timeout: float, who: str) -> Any:
    if not end.poll(timeout):
        raise SystemExit(f"no answer from the {who} process within {timeout:.0f} s")
    return end.recv()


async def _serve_and_measure(redis_url: str, dsn: str, plan: Plan, fanout: int) -> list[Outcome]:
    from portside.adapters.bullmq import BullMQQueue
    from portside.adapters.postgres import PostgresOutbox
    from portside.adapters.postgres.history import PostgresHistory
    from portside.app import Registry
    from portside.app.http import HttpSettings, create_app
    from portside.app.http.server import ApiServer
    from portside.examples.agents import AgentRuns
    from portside.infra import Infra

    infra = Infra(
        queue=BullMQQueue(redis_url, prefix="sse"),
        outbox=PostgresOutbox(dsn),
        history=PostgresHistory(dsn),
        name="sse-bench",
    )
    outcomes = []
    async with infra:
        app = create_app(infra, Registry(), HttpSettings(), runs=AgentRuns(), publish_outbox=True)
        async with ApiServer(app) as server:
            for subscribers in (1, fanout):
                for load, events, rate in (
                    (f"paced {plan.rate:.0f}/s", plan.paced_events, plan.rate),
                    ("flood", plan.flood_events, 0.0),
                ):
                    outcome = await _measure(server.url, dsn, subscribers, load, events, rate)
                    outcomes.append(outcome)
                    print(
                        f"  {subscribers:>3} subscribers, {load}: "
                        f"{outcome.deliveries / outcome.seconds:.0f} frames/s",
                        flush=True,
                    )
    return outcomes


def _report(outcomes: list[Outcome]) -> None:
    print(
        "\n| subscribers | load | events | appended/s | delivered frames/s | frames/s vs 1 sub "
        "| p50 ms | p99 ms | max ms | p99 vs 1 sub |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = {o.load: o for o in outcomes if o.subscribers == 1}
    for o in outcomes:
        rate = o.deliveries / o.seconds
        ref = base[o.load]
        p50, p99 = percentile(o.latencies, 0.5), percentile(o.latencies, 0.99)
        ref99 = percentile(ref.latencies, 0.99)
        print(
            f"| {o.subscribers} | {o.load} | {o.events} | {o.append_rate:.0f} | {rate:.0f} | "
            f"{rate / (ref.deliveries / ref.seconds):.2f}x | {p50:.2f} | {p99:.2f} | "
            f"{max(o.latencies):.2f} | {p99 / ref99:.2f}x |"
        )
    print(
        "\nlatency: commit -> the last subscriber reading the frame; delivered frames/s: frames "
        "read by all subscribers together, first commit to last frame"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer events")
    parser.add_argument("--subscribers", type=int, default=100)
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL

    from portside.examples.migrations import migrate
    from portside.servers import LocalPostgres

    print(header(f"SSE fan-out: one run's events to {args.subscribers} subscribers vs 1"))
    redis = RedisServer()
    postgres = LocalPostgres().start()
    try:
        print(f"servers: {redis.version}; {postgres.install.describe()}", flush=True)
        asyncio.run(migrate(postgres.dsn))
        outcomes = asyncio.run(_serve_and_measure(redis.url, postgres.dsn, plan, args.subscribers))
    finally:
        postgres.stop()
        redis.stop()
    _report(outcomes)


if __name__ == "__main__":
    main()
