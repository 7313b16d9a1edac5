"""Queue throughput: pre-loaded no-op jobs consumed by portside vs plain bullmq (vs Node BullMQ).

Starts a private ``redis-server`` on a free port, then for every contender and concurrency
pre-loads ``--jobs`` no-op jobs on a fresh queue and measures how fast one process consumes
them all. Each measurement runs in its own Python (or Node) process. Prints a table with
jobs/s and the ratio to the plain Python ``bullmq.Worker``.

    python benchmarks/queue_throughput.py [--jobs 20000] [--concurrency 1,10,50] [--no-node]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

from _common import NODE_DIR, RedisServer, node_ready, node_script

NODE_WORKER = r"""
const { Worker } = require('bullmq');
const IORedis = require('ioredis');
const [url, prefix, name, total, concurrency] = process.argv.slice(2);
let done = 0;
const started = process.hrtime.bigint();
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const worker = new Worker(name, async () => null, {
  connection, prefix, concurrency: Number(concurrency),
});
worker.on('completed', async () => {
  done += 1;
  if (done === Number(total)) {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    console.log(JSON.stringify({ seconds }));
    await worker.close();
    process.exit(0);
  }
});
"""


async def _preload(url: str, queue: str, jobs: int) -> None:
    from portside.adapters.bullmq import BullMQQueue
    from portside.ports import NewJob

    adapter = BullMQQueue(url, prefix="bench")
    try:
        for start in range(0, jobs, 1000):
            batch = [
                NewJob(name="noop", data={"i": i}) for i in range(start, min(jobs, start + 1000))
            ]
            await adapter.enqueue_bulk(queue, batch)
    finally:
        await adapter.close()


async def _run_portside(url: str, queue: str, jobs: int, concurrency: int) -> float:
    from portside.adapters.bullmq import BullMQQueue

    adapter = BullMQQueue(url, prefix="bench")

    async def handler(job: Any) -> None:
        return None

    worker = adapter.consume(queue, handler, concurrency=concurrency)
    started = time.perf_counter()
    await worker.start()
    while worker.status().processed < jobs:
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - started
    await adapter.close()
    return elapsed


async def _run_bullmq(url: str, queue: str, jobs: int, concurrency: int) -> float:
    from bullmq import Worker

    done = asyncio.Event()
    count = 0

    async def processor(job: Any, token: str) -> None:
        return None

    def completed(job: Any, result: Any) -> None:
        nonlocal count
        count += 1
        if count == jobs:
            done.set()

    started = time.perf_counter()
    worker = Worker(
        queue, processor, {"connection": url, "prefix": "bench", "concurrency": concurrency}
    )
    worker.on("completed", completed)
    await done.wait()
    elapsed = time.perf_counter() - started
    await worker.close()
    return elapsed


def _child(args: argparse.Namespace) -> None:
    runner = {"portside": _run_portside, "bullmq": _run_bullmq}[args.contender]
    elapsed = asyncio.run(runner(args.url, args.queue, args.jobs, args.concurrency))
    print(json.dumps({"seconds": elapsed}))


def _node_ready(install: bool) -> str | None:
    """Path of the Node worker script, or None when Node BullMQ 5 is unavailable."""
    return node_script("bench-worker.js", NODE_WORKER) if node_ready(install) else None


def _measure(
    contender: str, url: str, queue: str, jobs: int, concurrency: int, node: str | None
) -> float:
    if contender == "node":
        assert node is not None
        command = ["node", node, url, "bench", queue, str(jobs), str(concurrency)]
        cwd: str | None = str(NODE_DIR)
    else:
        command = [
            sys.executable,
            __file__,
            "--child",
            contender,
            "--url",
            url,
            "--queue",
            queue,
            "--jobs",
            str(jobs),
            "--concurrency",
            str(concurrency),
        ]
        cwd = None
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, timeout=900, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{contender} at concurrency {concurrency} failed:\n{result.stderr}")
    seconds: float = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per contender; the best one counts"
    )
    parser.add_argument("--no-node", action="store_true", help="skip the Node BullMQ contender")
    parser.add_argument("--no-install", action="store_true", help="never run npm install")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.contender = args.child
        args.concurrency = int(args.concurrency)
        _child(args)
        return

    levels = [int(c) for c in args.concurrency.split(",")]
    node = None if args.no_node else _node_ready(install=not args.no_install)
    contenders = ["bullmq", "portside"] + (["node"] if node else [])
    if not args.no_node and node is None:
        print("note: Node BullMQ contender skipped (node/npm missing or install failed)")
    server = RedisServer()
    results: dict[tuple[str, int], float] = {}
    try:
        for concurrency in levels:
            for run in range(args.repeat):
                for contender in contenders:
                    queue = f"{contender}-c{concurrency}-r{run}"
                    asyncio.run(_preload(server.url, queue, args.jobs))
                    seconds = _measure(contender, server.url, queue, args.jobs, concurrency, node)
                    rate = args.jobs / seconds
                    best = max(rate, results.get((contender, concurrency), 0.0))
                    results[(contender, concurrency)] = best
                    print(f"  {contender:<9} c={concurrency:<3} {rate:>9.0f} jobs/s", flush=True)
    finally:
        server.stop()

    import bullmq

    print()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}")
    versions = f"python {platform.python_version()}, bullmq (python) {bullmq.__version__}"
    print(f"{versions}, {server.version}")
    print(
        f"{args.jobs} no-op jobs pre-loaded per run; one consumer process per run; "
        f"best of {args.repeat} run(s)\n"
    )
    header = "| concurrency | bullmq.Worker jobs/s | portside jobs/s | portside / bullmq |"
    if node:
        header += " Node BullMQ jobs/s | portside / Node |"
    print(header)
    print("|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|")
    for concurrency in levels:
        base = results[("bullmq", concurrency)]
        ours = results[("portside", concurrency)]
        row = f"| {concurrency} | {base:.0f} | {ours:.0f} | {ours / base:.2f}x |"
        if node:
            theirs = results[("node", concurrency)]
            row += f" {theirs:.0f} | {ours / theirs:.2f}x |"
        print(row)
    top = max(levels)
    ours, base = results[("portside", top)], results[("bullmq", top)]
    print()
    verdict = "met" if ours >= 5 * base else "NOT met"
    print(f"target c={top} portside >= 5x bullmq.Worker: {verdict} ({ours / base:.2f}x)")
    if node:
        theirs = results[("node", top)]
        verdict = "met" if ours >= theirs else "NOT met"
        print(f"target c={top} portside >= Node BullMQ: {verdict} ({ours / theirs:.2f}x)")


if __name__ == "__main__":
    main()
