"""In-memory queue drain: no-op jobs through ``InMemoryQueue.drain()`` vs a bare asyncio loop.

Enqueues ``--jobs`` no-op jobs with one ``enqueue_bulk`` and times ``drain()`` (fresh queue
each repeat; best and median reported). The baseline, measured in the same run, awaits the
same no-op handler once per job in a plain ``for`` loop: the floor any queue adds its
bookkeeping to. The process is pinned to one CPU core where the OS allows it.

    python benchmarks/fakes.py [--jobs 100000] [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from portside.adapters.memory import InMemoryQueue
from portside.ports import Job, NewJob

FLOOR = 100_000  # jobs/s the issue asks of drain() on one core


async def noop(job: Job) -> None:
    return None


async def baseline(jobs: int) -> float:
    """Seconds a bare loop takes to await the handler once per job."""
    items: list[Any] = [object() for _ in range(jobs)]
    began = time.perf_counter()
    for item in items:
        await noop(item)
    return time.perf_counter() - began


async def drain_once(jobs: int, concurrency: int) -> tuple[float, float]:
    """(seconds for enqueue_bulk, seconds for drain) of ``jobs`` no-op jobs on a fresh fake."""
    queue = InMemoryQueue(events_log_limit=1000)
    queue.consume("bench", noop, concurrency=concurrency)
    batch = [NewJob(name="noop", data={}) for _ in range(jobs)]
    began = time.perf_counter()
    await queue.enqueue_bulk("bench", batch)
    enqueued = time.perf_counter()
    outcomes = await queue.drain("bench")
    drained = time.perf_counter()
    if len(outcomes) != jobs or outcomes[-1].status != "completed":
        raise SystemExit(f"drain returned {len(outcomes)} outcomes, expected {jobs} completed")
    await queue.close()
    return enqueued - began, drained - enqueued


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def row(name: str, jobs: int, seconds: list[float], base: float) -> str:
    best, median = min(seconds), statistics.median(seconds)
    rate = jobs / best
    return (
        f"| {name} | {jobs:,} | {best * 1000:,.1f} | {median * 1000:,.1f} | {rate:,.0f} "
        f"| {rate / (jobs / base):.3f} |"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 jobs, 2 repeats")
    args = parser.parse_args()
    jobs, repeat = (20_000, 2) if args.quick else (args.jobs, args.repeat)
    pinned = pin_to_one_core()

    base = min([await baseline(jobs) for _ in range(repeat)])
    serial = [await drain_once(jobs, 1) for _ in range(repeat)]
    parallel = [await drain_once(jobs, 5) for _ in range(repeat)]

    best_rate = jobs / min(drain for _, drain in serial)
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"python {sys.version.split()[0]}, {pinned}, best and median of {repeat} runs")
    print()
    print("| contender | jobs | best ms | median ms | jobs/s (best) | vs bare loop |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(row("bare asyncio loop (baseline)", jobs, [base], base))
    print(row("InMemoryQueue.drain(), concurrency 1", jobs, [d for _, d in serial], base))
    print(row("InMemoryQueue.drain(), concurrency 5", jobs, [d for _, d in parallel], base))
    print(row("InMemoryQueue.enqueue_bulk()", jobs, [e for e, _ in serial], base))
    print()
    verdict = "met" if best_rate >= FLOOR else "NOT met"
    print(f"drain floor of {FLOOR:,} jobs/s on one core: {verdict} ({best_rate:,.0f} jobs/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
