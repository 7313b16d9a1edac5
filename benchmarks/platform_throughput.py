"""Platform throughput: ``portside worker`` with everything on vs Node BullMQ vs the bare adapter.

Usage: python benchmarks/platform_throughput.py [--quick] [--workloads noop,realistic]
           [--jobs 100000] [--runs 5] [--concurrency 50] [--no-node] [--no-install]

What users run is the full worker, so this races, in rotated order and in the same run, at
job concurrency 50, one process each:

- Node BullMQ's bare ``Worker`` (pinned version, printed), and the same with ioredis
  ``enableAutoPipelining``;
- portside's bare adapter: ``BullMQQueue.consume`` with the handler alone;
- ``portside worker``: the real CLI with run history in a private Postgres with fsync on
  (data on disk, not tmpfs), JSON logs at INFO to a file, Prometheus metrics on a port.

Two workloads: no-op jobs, and a realistic one (~1 KB payloads, caller-chosen unique job ids,
handlers that await 1 ms; the worker validates the payload with its pydantic model and logs two
business keys). Each run pre-loads the jobs into a paused queue, starts the consumer, and times
from resuming the queue to Redis counting every job completed (start-up excluded for all;
see benchmarks/_consumers.py). After each worker run the benchmark asserts exactly one
completed run-history row per job, one ``job.completed`` log line per job and the metrics
counting every job. Reported: jobs/s median [min-max], ratios of medians, and CPU per job of
Redis (``INFO cpu``), of the consumer process and of Postgres (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from _common import (
    QUICK_RUNS,
    RUNS,
    RedisServer,
    durable_postgres,
    footer,
    header,
    median,
    node_ready,
    node_versions,
    run_rotated,
    spread,
)
from _consumers import (
    LABELS,
    PAYLOAD_BYTES,
    WORKERS,
    WORKLOADS,
    Bench,
    Sample,
    Workload,
    cost_columns,
    show_rate,
    throughput,
)

from portside.adapters.postgres import migrate

FULL_JOBS = 100_000
QUICK_JOBS = 10_000
VS_NODE = 1.0
VS_BARE = 0.8


def report(
    workload: Workload, samples: dict[str, list[Sample]], jobs: int, concurrency: int
) -> None:
    rates = {name: median([s.rate for s in runs]) for name, runs in samples.items()}
    node, bare = rates.get("node"), rates.get("bare")
    print(f"\n{workload.title}, concurrency {concurrency}, {jobs:,} jobs per run")
    print(
        "| contender | jobs/s median [range] | vs Node bare | vs bare adapter | Redis CPU "
        "µs/job | Redis busy | consumer CPU µs/job | Postgres CPU µs/job |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in samples.items():
        busy = median([s.redis_cpu / s.seconds for s in runs])
        print(
            f"| {LABELS[name]} | {spread([s.rate for s in runs])} | "
            f"{_ratio(rates[name], node)} | {_ratio(rates[name], bare)} | "
            f"{cost_columns(runs, lambda s: s.redis_cpu)} | {busy:.0%} | "
            f"{cost_columns(runs, lambda s: s.consumer_cpu)} | "
            f"{cost_columns(runs, lambda s: s.postgres_cpu)} |"
        )
    where = f"{workload.key}, c={concurrency}"
    for name in WORKERS:
        worker = rates.get(name)
        if worker is None:
            continue
        full, counted = LABELS[name], len(samples[name])
        if node is not None:
            verdict = "met" if worker >= VS_NODE * node else "NOT met"
            print(
                f"target {where}: {full} >= {VS_NODE:.1f}x Node BullMQ bare Worker: {verdict} "
                f"({worker / node:.2f}x, medians of {counted} runs)"
            )
        if bare is not None:
            verdict = "met" if worker >= VS_BARE * bare else "NOT met"
            print(
                f"target {where}: {full} >= {VS_BARE:.1f}x portside bare adapter: {verdict} "
                f"({worker / bare:.2f}x, medians of {counted} runs)"
            )


def _ratio(value: float, base: float | None) -> str:
    return "n/a" if base is None else f"{value / base:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 jobs and 3 runs")
    parser.add_argument("--workloads", default="noop,realistic", help="noop, realistic")
    parser.add_argument("--jobs", type=int, help=f"jobs per run (default {FULL_JOBS:,})")
    parser.add_argument("--runs", type=int, help=f"runs per contender (default {RUNS})")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-node", action="store_true", help="skip the Node contenders")
    parser.add_argument("--no-install", action="store_true", help="never run npm install")
    args = parser.parse_args()
    jobs = args.jobs or (QUICK_JOBS if args.quick else FULL_JOBS)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    workloads = [WORKLOADS[name.strip()] for name in args.workloads.split(",") if name.strip()]

    print(header("Platform throughput: portside worker vs Node BullMQ vs the bare adapter"))
    node = not args.no_node and node_ready(install=not args.no_install)
    contenders = (["node", "node-ap"] if node else []) + ["bare", "worker", "worker-async"]
    if not args.no_node and not node:
        print("note: Node BullMQ contenders skipped (node/npm missing or install failed)")
    if jobs < FULL_JOBS or runs < RUNS:
        print(
            f"note: {jobs:,} jobs and {runs} runs per contender (the rules ask >= {FULL_JOBS:,} "
            f"and >= {RUNS}): {'--quick, ' if args.quick else ''}development figures only"
        )
    redis = RedisServer()
    postgres, described = durable_postgres()
    try:
        asyncio.run(migrate(postgres.dsn))
        print(f"redis: {redis.version}")
        print(f"postgres (run history): {described}")
        if node:
            print(f"node: {node_versions()}")
        print(
            f"realistic payload: {PAYLOAD_BYTES} bytes of JSON; runs rotate the order "
            f"{' -> '.join(contenders)}",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="portside-platform-") as directory:
            bench = Bench(
                redis.url,
                redis.pid,
                Path(directory),
                args.concurrency,
                postgres.dsn,
                postgres.pid,
            )
            try:
                for workload in workloads:
                    print(f"\n{workload.title}:", flush=True)

                    def measure(contender: str, run: int, workload: Workload = workload) -> Sample:
                        prefix = f"{workload.key}-r{run}-{contender}"
                        return throughput(bench, contender, workload, jobs, prefix)

                    samples = run_rotated(contenders, runs, measure, show_rate)
                    report(workload, samples, jobs, args.concurrency)
            finally:
                bench.close()
    finally:
        postgres.stop()
        redis.stop()
    print(footer())


if __name__ == "__main__":
    main()
