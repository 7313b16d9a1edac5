"""Queue latency: single enqueue p50/p99, bulk enqueue rate, end-to-end latency at 1,000 jobs/s.

Usage: python benchmarks/queue_latency.py [--quick] [--no-node] [--no-install]
                                         [--only single,bulk,e2e] [--repeat N]

Starts a private Redis (``portside.servers.LocalRedis``) and measures, in one run:

1. Single ``enqueue`` latency (one awaited call after another, after a warm-up): the portside
   adapter against the plain Python ``bullmq.Queue.add`` (baseline) and Node BullMQ 5
   ``queue.add`` (installed into a cache dir, as in queue_throughput.py).
2. Bulk enqueue rate in batches of 1,000: ``enqueue_bulk`` against ``bullmq.Queue.addBulk``
   (baseline) and Node ``queue.addBulk``.
3. End-to-end latency at a steady 1,000 jobs/s: a paced producer (the portside adapter, in this
   process, on a monotonic schedule) feeds a worker at concurrency 50 in another process,
   either portside's or the plain ``bullmq.Worker`` (baseline). Each job carries the monotonic
   time its enqueue started; the handler records ``now - t`` when it runs (CLOCK_MONOTONIC is
   system-wide on Linux), so the figure is enqueue start -> handler running.

``--only`` runs some of the three sections (all by default); ``--repeat`` runs the single and
bulk sections N times, the Python contenders taking turns to go first, and reports every run,
so a loaded machine shows as a spread rather than one lucky or unlucky figure. "client CPU" is
the CPU time of this process per call or job (``time.process_time``): the producer's own cost,
which other load on the machine disturbs much less than the wall-clock figures.

Targets (issue 9): single enqueue p99 < 1 ms; end-to-end p99 < 5 ms at 1,000 jobs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import NODE_DIR, RedisServer, header, node_ready, node_script, percentile

from portside.adapters.bullmq import BullMQQueue
from portside.ports import NewJob

PREFIX = "bench"
BATCH = 1_000
E2E_RATE = 1_000
E2E_CONCURRENCY = 50
NODE_ADD = r"""
const { Queue } = require('bullmq');
const IORedis = require('ioredis');
const [url, prefix, name, mode, count, warmup] = process.argv.slice(2);
(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  for (let i = 0; i < Number(warmup); i++) await queue.add('noop', { i });
  if (mode === 'single') {
    const latencies = [];
    for (let i = 0; i < Number(count); i++) {
      const started = process.hrtime.bigint();
      await queue.add('noop', { i });
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    console.log(JSON.stringify({ latencies }));
  } else {
    const started = process.hrtime.bigint();
    for (let start = 0; start < Number(count); start += 1000) {
      const jobs = [];
      for (let i = start; i < Math.min(Number(count), start + 1000); i++) {
        jobs.push({ name: 'noop', data: { i } });
      }
      await queue.addBulk(jobs);
    }
    console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
  }
  await queue.close();
  await connection.quit();
})();
"""


@dataclass(frozen=True)
class Plan:
    single: int
    warmup: int
    bulk: int
    e2e_seconds: float


FULL = Plan(single=10_000, warmup=500, bulk=100_000, e2e_seconds=10)
QUICK = Plan(single=2_000, warmup=200, bulk=20_000, e2e_seconds=3)


# ---------------------------------------------------------------- single and bulk enqueue


@dataclass(frozen=True)
class Single:
    """Per-call latencies (ms) and this process's CPU time per call (µs; None for Node)."""

    latencies: list[float]
    cpu_us: float | None = None


@dataclass(frozen=True)
class Bulk:
    """Wall time for all jobs (s) and this process's CPU time per job (µs; None for Node)."""

    seconds: float
    cpu_us: float | None = None


async def _single_portside(url: str, queue: str, plan: Plan) -> Single:
    adapter = BullMQQueue(url, prefix=PREFIX)
    try:
        for i in range(plan.warmup):
            await adapter.enqueue(queue, "noop", {"i": i})
        latencies = []
        cpu = time.process_time()
        for i in range(plan.single):
            started = time.perf_counter()
            await adapter.enqueue(queue, "noop", {"i": i})
            latencies.append((time.perf_counter() - started) * 1000)
        return Single(latencies, (time.process_time() - cpu) / plan.single * 1e6)
    finally:
        await adapter.close()


async def _single_bullmq(url: str, queue: str, plan: Plan) -> Single:
    from bullmq import Queue

    client = Queue(queue, {"connection": url, "prefix": PREFIX})
    try:
        for i in range(plan.warmup):
            await client.add("noop", {"i": i})
        latencies = []
        cpu = time.process_time()
        for i in range(plan.single):
            started = time.perf_counter()
            await client.add("noop", {"i": i})
            latencies.append((time.perf_counter() - started) * 1000)
        return Single(latencies, (time.process_time() - cpu) / plan.single * 1e6)
    finally:
        await client.close()


async def _bulk_portside(url: str, queue: str, total: int) -> Bulk:
    adapter = BullMQQueue(url, prefix=PREFIX)
    try:
        await adapter.enqueue_bulk(queue, [NewJob(name="noop", data={"i": -1})])
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, total, BATCH):
            batch = [NewJob(name="noop", data={"i": i}) for i in range(start, start + BATCH)]
            await adapter.enqueue_bulk(queue, batch)
        return Bulk(time.perf_counter() - started, (time.process_time() - cpu) / total * 1e6)
    finally:
        await adapter.close()


async def _bulk_bullmq(url: str, queue: str, total: int) -> Bulk:
    from bullmq import Queue

    client = Queue(queue, {"connection": url, "prefix": PREFIX})
    try:
        await client.addBulk([{"name": "noop", "data": {"i": -1}}])
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, total, BATCH):
            batch: list[dict[str, Any]] = [
                {"name": "noop", "data": {"i": i}} for i in range(start, start + BATCH)
            ]
            await client.addBulk(batch)
        return Bulk(time.perf_counter() - started, (time.process_time() - cpu) / total * 1e6)
    finally:
        await client.close()


def _node(url: str, queue: str, mode: str, count: int, warmup: int) -> dict[str, Any]:
    script = node_script("bench-add.js", NODE_ADD)
    command = ["node", script, url, PREFIX, queue, mode, str(count), str(warmup)]
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=NODE_DIR, timeout=600, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"node {mode} enqueue failed:\n{result.stderr}")
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


# ---------------------------------------------------------------- end to end


async def _e2e_worker(contender: str, url: str, queue: str, total: int) -> None:
    """Child process: consume ``queue`` at concurrency 50, print each job's latency at the end."""
    latencies: list[float] = []
    done = asyncio.Event()

    def seen(data: dict[str, Any]) -> None:
        now = time.monotonic()
        if data.get("warm"):
            print("warm", flush=True)
            return
        latencies.append((now - data["t"]) * 1000)
        if len(latencies) == total:
            done.set()

    if contender == "portside":
        adapter = BullMQQueue(url, prefix=PREFIX)

        async def handler(job: Any) -> None:
            seen(job.data)

        worker = adapter.consume(queue, handler, concurrency=E2E_CONCURRENCY)
        await worker.start()
        await done.wait()
        await adapter.close()
    else:
        from bullmq import Worker

        async def processor(job: Any, token: str) -> None:
            seen(job.data)

        options = {"connection": url, "prefix": PREFIX, "concurrency": E2E_CONCURRENCY}
        bull = Worker(queue, processor, options)
        await done.wait()
        await bull.close()
    print(json.dumps({"latencies": latencies}), flush=True)


@dataclass(frozen=True)
class E2E:
    latencies: list[float]
    achieved_rate: float
    max_lag_ms: float


async def _paced(adapter: BullMQQueue, queue: str, total: int, rate: float) -> tuple[float, float]:
    worst = 0.0
    start = time.monotonic()
    for index in range(total):
        due = start + index / rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        now = time.monotonic()
        worst = max(worst, now - due)
        await adapter.enqueue(queue, "noop", {"t": now})
    return total / (time.monotonic() - start), worst * 1000


async def _produce(url: str, queue: str, total: int, worker: subprocess.Popen[str]) -> E2E:
    """Warm the worker up with one job, then enqueue ``total`` jobs at ``E2E_RATE``."""
    assert worker.stdout is not None
    adapter = BullMQQueue(url, prefix=PREFIX)
    try:
        await adapter.enqueue(queue, "noop", {"warm": True})
        # Blocking read on purpose: nothing else runs yet; "warm" says the worker is fetching.
        line = worker.stdout.readline().strip()
        if line != "warm":
            raise SystemExit(f"the e2e worker did not start (it said {line!r})")
        rate, lag = await _paced(adapter, queue, total, E2E_RATE)
    finally:
        await adapter.close()
    out, _ = worker.communicate(timeout=120)
    latencies: list[float] = json.loads(out.strip().splitlines()[-1])["latencies"]
    return E2E(latencies, rate, lag)


def _e2e(contender: str, url: str, queue: str, seconds: float) -> E2E:
    total = int(E2E_RATE * seconds)
    command = [sys.executable, __file__, "--child", contender, "--url", url]
    command += ["--queue", queue, "--jobs", str(total)]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        return asyncio.run(_produce(url, queue, total, worker))
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


# ---------------------------------------------------------------- report


def _ms(values: list[float]) -> tuple[float, float]:
    return percentile(values, 0.5), percentile(values, 0.99)


def _verdict(value: float, target: float) -> str:
    return "met" if value < target else "MISSED"


SECTIONS = ("single", "bulk", "e2e")


def _sections(value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [part for part in chosen if part not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"pick from {', '.join(SECTIONS)} (comma-separated)")
    return chosen


@dataclass
class Results:
    single: list[dict[str, Single]]
    bulk: list[dict[str, Bulk]]
    e2e: dict[str, E2E]


def _measure(url: str, plan: Plan, sections: tuple[str, ...], node: bool, repeat: int) -> Results:
    """Run the sections; with ``repeat`` > 1 the two Python contenders swap turns each run."""
    results = Results([], [], {})
    for run in range(repeat):
        order = ("bullmq", "portside") if run % 2 == 0 else ("portside", "bullmq")
        if "single" in sections:
            singles = {"bullmq": _single_bullmq, "portside": _single_portside}
            single = {
                name: asyncio.run(singles[name](url, f"single-{name}-{run}", plan))
                for name in order
            }
            if node:
                found = _node(url, f"single-node-{run}", "single", plan.single, plan.warmup)
                single["node"] = Single(found["latencies"])
            results.single.append(single)
        if "bulk" in sections:
            bulks = {"bullmq": _bulk_bullmq, "portside": _bulk_portside}
            bulk = {
                name: asyncio.run(bulks[name](url, f"bulk-{name}-{run}", plan.bulk))
                for name in order
            }
            if node:
                bulk["node"] = Bulk(_node(url, f"bulk-node-{run}", "bulk", plan.bulk, 1)["seconds"])
            results.bulk.append(bulk)
    if "e2e" in sections:
        results.e2e = {
            name: _e2e(name, url, f"e2e-{name}", plan.e2e_seconds)
            for name in ("bullmq", "portside")
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer jobs, shorter e2e run")
    parser.add_argument("--no-node", action="store_true", help="skip the Node BullMQ contender")
    parser.add_argument("--no-install", action="store_true", help="never run npm install")
    parser.add_argument(
        "--only",
        type=_sections,
        default=SECTIONS,
        help="comma-separated sections to run: single, bulk, e2e (default: all)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the single and bulk sections N times"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_e2e_worker(args.child, args.url, args.queue, args.jobs))
        return

    plan = QUICK if args.quick else FULL
    wants_node = not args.no_node and {"single", "bulk"} & set(args.only)
    node = bool(wants_node) and node_ready(install=not args.no_install)
    print(header("Queue latency: single enqueue, bulk enqueue, end-to-end at 1,000 jobs/s"))
    if wants_node and not node:
        print("note: Node BullMQ contender skipped (node/npm missing or install failed)")
    server = RedisServer()
    print(f"server: {server.version}\n", flush=True)
    try:
        results = _measure(server.url, plan, args.only, node, max(1, args.repeat))
    finally:
        server.stop()
    for single in results.single:
        _report_single(plan, single)
    for bulk in results.bulk:
        _report_bulk(plan, bulk)
    if results.e2e:
        _report_e2e(plan, results.e2e)


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _report_single(plan: Plan, single: dict[str, Single]) -> None:
    names = {"bullmq": "bullmq.Queue.add (baseline)", "portside": "portside enqueue"}
    names["node"] = "Node BullMQ queue.add"
    base50, base99 = _ms(single["bullmq"].latencies)
    print(f"Single enqueue: {plan.single} sequential calls after {plan.warmup} warm-up calls")
    print(
        "| contender | p50 ms | p99 ms | p50 vs baseline | p99 vs baseline | client CPU µs/call |"
    )
    print("|---|---|---|---|---|---|")
    for key in ("bullmq", "portside", "node"):
        if key not in single:
            continue
        p50, p99 = _ms(single[key].latencies)
        print(
            f"| {names[key]} | {p50:.3f} | {p99:.3f} | {p50 / base50:.2f}x | {p99 / base99:.2f}x "
            f"| {_cpu(single[key].cpu_us)} |"
        )
    ours99 = _ms(single["portside"].latencies)[1]
    print(f"target single enqueue p99 < 1 ms: {_verdict(ours99, 1.0)} ({ours99:.3f} ms)\n")


def _report_bulk(plan: Plan, bulk: dict[str, Bulk]) -> None:
    bulk_names = {"bullmq": "bullmq.Queue.addBulk (baseline)", "portside": "portside enqueue_bulk"}
    bulk_names["node"] = "Node BullMQ queue.addBulk"
    base = plan.bulk / bulk["bullmq"].seconds
    print(f"Bulk enqueue: {plan.bulk} jobs in batches of {BATCH}")
    print("| contender | jobs/s | vs baseline | client CPU µs/job |")
    print("|---|---|---|---|")
    for key in ("bullmq", "portside", "node"):
        if key not in bulk:
            continue
        rate = plan.bulk / bulk[key].seconds
        print(f"| {bulk_names[key]} | {rate:.0f} | {rate / base:.2f}x | {_cpu(bulk[key].cpu_us)} |")
    print()


def _report_e2e(plan: Plan, e2e: dict[str, E2E]) -> None:
    total = int(E2E_RATE * plan.e2e_seconds)
    print(
        f"End to end (enqueue start -> handler running): {total} jobs at {E2E_RATE} jobs/s, "
        f"worker concurrency {E2E_CONCURRENCY} in its own process, portside producer"
    )
    print(
        "| worker | p50 ms | p99 ms | max ms | p99 vs baseline | producer jobs/s | worst lag ms |"
    )
    print("|---|---|---|---|---|---|---|")
    base99 = _ms(e2e["bullmq"].latencies)[1]
    labels = {"bullmq": "bullmq.Worker (baseline)", "portside": "portside adapter"}
    for key, run in e2e.items():
        p50, p99 = _ms(run.latencies)
        print(
            f"| {labels[key]} | {p50:.2f} | {p99:.2f} | {max(run.latencies):.2f} | "
            f"{p99 / base99:.3g}x | {run.achieved_rate:.0f} | {run.max_lag_ms:.1f} |"
        )
    ours99 = _ms(e2e["portside"].latencies)[1]
    print(f"target e2e p99 < 5 ms at 1,000 jobs/s: {_verdict(ours99, 5.0)} ({ours99:.2f} ms)")


if __name__ == "__main__":
    main()
