"""How queue throughput adds up over Redis Cluster shards (S1, S5).

Usage: python benchmarks/cluster_shards.py [--quick] [--jobs 40000] [--runs 5] [--concurrency 50]

A private cluster of 3 masters (no replicas). The same load, ``--jobs`` pre-loaded no-op
jobs, is consumed by portside's bare adapter (``BullMQQueue.consume``) in two layouts:

- ``1 shard``: every job in one queue under one hash tag, one consumer process;
- ``2 shards``: half the jobs under each of two tags whose slots live on different masters,
  one consumer process per tag.

The consumers start together (a barrier) once connected; the rate is all jobs over the time
from that start to the last job finished. Redis CPU per shard is the ``INFO cpu`` delta of
each master over the same span. Runs alternate the layouts.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from multiprocessing.synchronize import Barrier
from typing import Any

from _common import RUNS, RedisCpu, footer, header, spread
from redis.crc import key_slot

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job, NewJob
from portside.servers.cluster import LocalCluster

QUEUE = "bench"
BATCH = 1_000


def _url(cluster: LocalCluster) -> str:
    return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster.masters)


def _tags_on_two_shards(cluster: LocalCluster) -> tuple[str, str]:
    seen: dict[int, str] = {}
    for n in range(1000):
        tag = f"{{shard-{n}}}"
        seen.setdefault(cluster.owner_of(key_slot(tag.encode())).port, tag)
        if len(seen) == 2:
            first, second = seen.values()
            return first, second
    raise RuntimeError("no two tags on different shards")


async def _load(url: str, prefix: str, jobs: int) -> None:
    adapter = BullMQQueue(url, prefix=prefix)
    try:
        for start in range(0, jobs, BATCH):
            batch = [NewJob(name="noop", data={}) for _ in range(min(BATCH, jobs - start))]
            await adapter.enqueue_bulk(QUEUE, batch)
    finally:
        await adapter.close()


async def _consume(url: str, prefix: str, jobs: int, concurrency: int, go: Barrier) -> float:
    adapter = BullMQQueue(url, prefix=prefix)
    finished = asyncio.Event()
    done = 0

    async def noop(job: Job) -> None:
        nonlocal done
        done += 1
        if done >= jobs:
            finished.set()

    try:
        await adapter.counts(QUEUE)  # connected before the start line
        await asyncio.to_thread(go.wait)
        worker = adapter.consume(QUEUE, noop, concurrency=concurrency)
        await worker.start()
        await finished.wait()
        ended = time.time()
        await worker.close()
        return ended
    finally:
        await adapter.close()


def _consumer(url: str, prefix: str, jobs: int, concurrency: int, go: Barrier, out: Any) -> None:
    out.put(asyncio.run(_consume(url, prefix, jobs, concurrency, go)))


def run(
    cluster: LocalCluster, tags: list[str], jobs: int, concurrency: int, label: str
) -> tuple[float, dict[int, float]]:
    """Jobs/s of one run and the Redis CPU (µs per job of that shard) of each master used."""
    url = _url(cluster)
    share = jobs // len(tags)
    prefixes = [f"{tag}:{label}" for tag in tags]
    for prefix in prefixes:
        asyncio.run(_load(url, prefix, share))
    context = mp.get_context("spawn")
    go = context.Barrier(len(tags) + 1)
    out = context.Queue()
    processes = [
        context.Process(target=_consumer, args=(url, prefix, share, concurrency, go, out))
        for prefix in prefixes
    ]
    for process in processes:
        process.start()
    shards = {tag: cluster.owner_of(key_slot(tag.encode())) for tag in tags}
    meters = {tag: RedisCpu(node.url) for tag, node in shards.items()}
    go.wait()
    began = time.time()
    cpu_before = {tag: meter.sample() for tag, meter in meters.items()}
    ends = [out.get(timeout=600) for _ in processes]
    cpu = {
        shards[tag].port: (meter.sample() - cpu_before[tag]) / share * 1e6
        for tag, meter in meters.items()
    }
    for process in processes:
        process.join(timeout=30)
    for meter in meters.values():
        meter.close()
    return jobs / (max(ends) - began), cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 jobs and 1 run")
    parser.add_argument("--jobs", type=int, help="jobs per run (default 40,000)")
    parser.add_argument("--runs", type=int, help=f"runs per layout (default {RUNS})")
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    args.jobs = args.jobs or (10_000 if args.quick else 40_000)
    args.runs = args.runs or (1 if args.quick else RUNS)
    print(header("Queue throughput over Redis Cluster shards (bare adapter, no-op jobs)"))
    cluster = LocalCluster(masters=3, replicas=0).start()
    try:
        first, second = _tags_on_two_shards(cluster)
        layouts = {"1 shard": [first], "2 shards": [first, second]}
        rates: dict[str, list[float]] = {name: [] for name in layouts}
        costs: dict[str, list[float]] = {name: [] for name in layouts}
        for number in range(args.runs):
            for name, tags in layouts.items():
                rate, cpu = run(cluster, tags, args.jobs, args.concurrency, f"r{number}")
                rates[name].append(rate)
                costs[name].extend(cpu.values())
                shown = ", ".join(f"{us:.0f}" for us in cpu.values())
                print(f"run {number + 1} {name}: {rate:,.0f} jobs/s, Redis µs/job {shown}")
        print(f"\n{args.jobs:,} jobs per run, concurrency {args.concurrency} per consumer")
        print("| layout | jobs/s median [range] | Redis CPU µs/job per shard |")
        print("|---|---:|---:|")
        for name in layouts:
            print(f"| {name} | {spread(rates[name])} | {spread(costs[name])} |")
    finally:
        cluster.stop()
    print(footer())


if __name__ == "__main__":
    main()
