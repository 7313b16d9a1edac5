"""Worker scaling: ``portside worker --processes N`` on pre-loaded no-op jobs, N = 1..cores.

Usage: python benchmarks/worker_scaling.py [--quick] [--jobs 100000] [--runs 5]
           [--concurrency 50] [--max-processes N]

Starts a private Redis and a private Postgres with fsync on (run history on disk), then
races ``portside worker --processes N`` for N = 1..cores in rotated order, ``--runs`` runs
each. Every run pre-loads the jobs into a paused queue, launches the real CLI (JSON logs at
INFO to a file, metrics on, run history), waits until all N processes log ``worker.ready``,
resumes the queue and times until Redis counts every job completed; then checks one
completed run-history row per job (see benchmarks/_consumers.py). Start-up (launch to every
``worker.ready``) is reported on its own (requirement P: < 500 ms). Reported: jobs/s median
[min-max], the ratio to N = 1 and the per-process efficiency (ratio / N) of the medians, CPU
per job of Redis, the worker processes and Postgres, and start-up median [min-max].
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from _common import (
    QUICK_RUNS,
    RUNS,
    RedisServer,
    compile_portside,
    durable_postgres,
    footer,
    header,
    median,
    run_rotated,
    spread,
)
from _consumers import NOOP, Bench, Sample, cost_columns, show_rate, throughput

from portside.adapters.postgres import migrate

TARGET_STARTUP_S = 0.5
"""Requirement P: a worker is ready within 500 ms of its launch (interpreter start included)."""
FULL_JOBS = 100_000
QUICK_JOBS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 jobs and 3 runs")
    parser.add_argument("--jobs", type=int, help=f"jobs per run (default {FULL_JOBS:,})")
    parser.add_argument("--runs", type=int, help=f"runs per N (default {RUNS})")
    parser.add_argument("--concurrency", type=int, default=50, help="job concurrency per process")
    parser.add_argument("--max-processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    jobs = args.jobs or (QUICK_JOBS if args.quick else FULL_JOBS)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    levels = {f"N={n}": n for n in range(1, args.max_processes + 1)}

    print(header("Worker scaling: portside worker --processes N on pre-loaded no-op jobs"))
    if jobs < FULL_JOBS or runs < RUNS:
        print(
            f"note: {jobs:,} jobs and {runs} runs per N (the rules ask >= {FULL_JOBS:,} and "
            f">= {RUNS}): development figures only"
        )
    print(compile_portside())
    redis = RedisServer()
    postgres, described = durable_postgres()
    try:
        asyncio.run(migrate(postgres.dsn))
        print(f"redis: {redis.version}")
        print(f"postgres (run history): {described}")
        print(f"runs rotate the order {' -> '.join(levels)}", flush=True)
        with tempfile.TemporaryDirectory(prefix="portside-scaling-") as directory:
            bench = Bench(
                redis.url, redis.pid, Path(directory), args.concurrency, postgres.dsn, postgres.pid
            )
            try:

                def measure(level: str, run: int) -> Sample:
                    prefix = f"scale-r{run}-n{levels[level]}"
                    return throughput(bench, "worker", NOOP, jobs, prefix, processes=levels[level])

                samples = run_rotated(
                    list(levels),
                    runs,
                    measure,
                    lambda s: f"{show_rate(s)}, start-up {s.startup * 1000:.0f} ms",
                )
            finally:
                bench.close()
    finally:
        postgres.stop()
        redis.stop()

    rates = {level: median([s.rate for s in runs]) for level, runs in samples.items()}
    one = rates["N=1"]
    print(
        f"\n{jobs:,} no-op jobs pre-loaded per run; job concurrency {args.concurrency} per "
        f"process; {runs} runs per N; timed from resume to the last completion (start-up "
        "excluded)"
    )
    print(
        "| processes | jobs/s median [range] | vs N=1 | per-process efficiency | Redis CPU "
        "µs/job | worker CPU µs/job | Postgres CPU µs/job | start-up ms median [range] |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for level, runs_of in samples.items():
        ratio = rates[level] / one
        print(
            f"| {levels[level]} | {spread([s.rate for s in runs_of])} | {ratio:.2f}x | "
            f"{ratio / levels[level]:.0%} | {cost_columns(runs_of, lambda s: s.redis_cpu)} | "
            f"{cost_columns(runs_of, lambda s: s.consumer_cpu)} | "
            f"{cost_columns(runs_of, lambda s: s.postgres_cpu)} | "
            f"{spread([s.startup * 1000 for s in runs_of])} |"
        )
    startup = median([s.startup for s in samples["N=1"]])
    verdict = "met" if startup < TARGET_STARTUP_S else "NOT met"
    print(
        f"\ntarget portside worker start-up < {TARGET_STARTUP_S * 1000:.0f} ms (launch to "
        f"worker.ready, one process): {verdict} ({startup * 1000:.0f} ms, median of {runs} runs)"
    )
    if len(levels) > 1:
        top = max(levels.values())
        efficiency = rates[f"N={top}"] / one / top
        ratio = rates[f"N={top}"] / one
        print(
            f"target portside worker --processes {top} scales (> 1.00x N=1): "
            f"{'met' if ratio > 1 else 'NOT met'} ({ratio:.2f}x, {efficiency:.0%} per-process "
            f"efficiency, medians of {runs} runs)"
        )
    print(footer())


if __name__ == "__main__":
    main()
