"""Queue throughput: pre-loaded no-op jobs, one consumer process per run, at concurrency 1/10/50.

Usage: python benchmarks/queue_throughput.py [--quick] [--concurrency 1,10,50] [--jobs 100000]
           [--runs 5] [--budget 20] [--no-node] [--no-install] [--no-worker]

Contenders, raced in rotated order in the same run against one private Redis (see
benchmarks/_consumers.py for the timing protocol, the same for all):

- Python ``bullmq.Worker`` (the baseline of the ``5x`` target);
- portside's bare adapter (``BullMQQueue.consume`` with a no-op handler);
- Node BullMQ's ``Worker`` (pinned version, printed), and the same with ioredis
  ``enableAutoPipelining``;
- ``portside worker`` with run history (Postgres, fsync on), JSON logs at INFO to a file and
  metrics: what users run, checked after every run (one completed history row per job).

Every contender gets ``--jobs`` (100,000) jobs per run unless that would take longer than
``--budget`` seconds at the rate of a 5,000-job calibration run of that contender and
concurrency (not counted); then it gets what fits in the budget (at least 20,000), and the
output says so. Reported per concurrency: jobs/s median [min-max] of ``--runs`` runs, ratios of
medians, and CPU per job of Redis (``INFO cpu``), of the consumer and of Postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
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
from _consumers import LABELS, NOOP, Bench, Sample, cost_columns, show_rate, throughput

from portside.adapters.postgres import migrate

FULL_JOBS = 100_000
QUICK_JOBS = 10_000
CALIBRATION_JOBS = 5_000
MIN_JOBS = 20_000


@contextlib.contextmanager
def servers(worker: bool) -> Iterator[tuple[RedisServer, str | None, int | None, str]]:
    redis = RedisServer()
    postgres = None
    try:
        described = ""
        if worker:
            postgres, described = durable_postgres()
            asyncio.run(migrate(postgres.dsn))
        yield (
            redis,
            postgres.dsn if postgres else None,
            postgres.pid if postgres else None,
            described,
        )
    finally:
        if postgres is not None:
            postgres.stop()
        redis.stop()


def plan_jobs(
    bench: Bench, contenders: list[str], jobs: int, budget: float, concurrency: int
) -> dict[str, int]:
    """Jobs per run for each contender: ``jobs`` unless that takes longer than ``budget``."""
    planned = {}
    for contender in contenders:
        prefix = f"cal-c{concurrency}-{contender}"
        rate = throughput(bench, contender, NOOP, CALIBRATION_JOBS, prefix).rate
        fits = int(rate * budget) // 1000 * 1000
        planned[contender] = jobs if fits >= jobs else max(min(MIN_JOBS, jobs), fits)
        if planned[contender] < jobs:
            print(
                f"note: {LABELS[contender]} at c={concurrency} gets {planned[contender]:,} jobs "
                f"per run: {jobs:,} would take {jobs / rate:.0f} s at its calibration rate "
                f"({rate:,.0f} jobs/s), over the {budget:.0f} s budget",
                flush=True,
            )
    return planned


def report(
    concurrency: int, samples: dict[str, list[Sample]], planned: dict[str, int]
) -> dict[str, float]:
    rates = {name: median([s.rate for s in runs]) for name, runs in samples.items()}
    base, node = rates.get("bullmq"), rates.get("node")
    print(f"\nconcurrency {concurrency}")
    print(
        "| contender | jobs per run | jobs/s median [range] | vs bullmq.Worker | vs Node bare | "
        "Redis CPU µs/job | Redis busy | consumer CPU µs/job | Postgres CPU µs/job |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in samples.items():
        busy = median([s.redis_cpu / s.seconds for s in runs])
        print(
            f"| {LABELS[name]} | {planned[name]:,} | {spread([s.rate for s in runs])} | "
            f"{_ratio(rates[name], base)} | {_ratio(rates[name], node)} | "
            f"{cost_columns(runs, lambda s: s.redis_cpu)} | {busy:.0%} | "
            f"{cost_columns(runs, lambda s: s.consumer_cpu)} | "
            f"{cost_columns(runs, lambda s: s.postgres_cpu)} |"
        )
    return rates


def _ratio(value: float, base: float | None) -> str:
    return "n/a" if base is None else f"{value / base:.2f}x"


def targets(top: int, rates: dict[str, float], runs: int) -> None:
    bare, base, node = rates["bare"], rates.get("bullmq"), rates.get("node")
    label = LABELS["bare"]
    if base is not None:
        verdict = "met" if bare >= 5 * base else "NOT met"
        print(
            f"target c={top} {label} >= 5x Python bullmq.Worker: {verdict} "
            f"({bare / base:.2f}x, medians of {runs} runs)"
        )
    if node is not None:
        verdict = "met" if bare >= node else "NOT met"
        print(
            f"target c={top} {label} >= Node BullMQ bare Worker: {verdict} "
            f"({bare / node:.2f}x, medians of {runs} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 jobs and 3 runs")
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--jobs", type=int, help=f"jobs per run (default {FULL_JOBS:,})")
    parser.add_argument("--runs", type=int, help=f"runs per contender (default {RUNS})")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds one run may take (default 20)"
    )
    parser.add_argument("--no-node", action="store_true", help="skip the Node contenders")
    parser.add_argument("--no-install", action="store_true", help="never run npm install")
    parser.add_argument("--no-worker", action="store_true", help="skip portside worker")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    jobs = args.jobs or (QUICK_JOBS if args.quick else FULL_JOBS)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)

    print(header("Queue throughput: pre-loaded no-op jobs, one consumer process per run"))
    node = not args.no_node and node_ready(install=not args.no_install)
    contenders = ["bullmq", "bare"] + (["node", "node-ap"] if node else [])
    contenders += [] if args.no_worker else ["worker"]
    if not args.no_node and not node:
        print("note: Node BullMQ contenders skipped (node/npm missing or install failed)")
    if jobs < FULL_JOBS or runs < RUNS:
        print(
            f"note: {jobs:,} jobs and {runs} runs per contender (the rules ask >= {FULL_JOBS:,} "
            f"and >= {RUNS}): {'--quick, ' if args.quick else ''}development figures only"
        )
    with (
        servers(not args.no_worker) as (redis, dsn, pg_pid, described),
        tempfile.TemporaryDirectory(prefix="portside-queue-") as directory,
    ):
        print(f"redis: {redis.version}")
        if described:
            print(f"postgres (run history of portside worker): {described}")
        if node:
            print(f"node: {node_versions()}")
        print(f"runs rotate the order {' -> '.join(contenders)}", flush=True)
        bench = Bench(redis.url, redis.pid, Path(directory), 50, dsn, pg_pid)
        results: dict[int, dict[str, float]] = {}
        try:
            for concurrency in levels:
                bench.concurrency = concurrency
                print(f"\nconcurrency {concurrency}:", flush=True)
                planned = (
                    dict.fromkeys(contenders, jobs)
                    if args.quick
                    else plan_jobs(bench, contenders, jobs, args.budget, concurrency)
                )

                def measure(
                    contender: str, run: int, c: int = concurrency, plan: dict[str, int] = planned
                ) -> Sample:
                    prefix = f"c{c}-r{run}-{contender}"
                    return throughput(bench, contender, NOOP, plan[contender], prefix)

                samples = run_rotated(contenders, runs, measure, show_rate)
                results[concurrency] = report(concurrency, samples, planned)
        finally:
            bench.close()
    print()
    targets(max(levels), results[max(levels)], runs)
    print(footer())


if __name__ == "__main__":
    main()
