"""Tracing overhead (OBS1): ``portside worker`` throughput with tracing off and on, same run.

Usage: python benchmarks/tracing_overhead.py [--quick] [--workloads noop,realistic]
           [--jobs 20000] [--runs 5] [--concurrency 50]

The real ``portside worker`` CLI (run history in a private Postgres with fsync on but history
commits not waiting for the flush, ``PORTSIDE_HISTORY_SYNCHRONOUS_COMMIT=off``, so the worker's
own CPU rather than the disk bounds the rate; JSON logs at INFO to a file; Prometheus metrics on
a port: see benchmarks/_consumers.py for the protocol and the checks after each run), in four
tracing modes, in rotated order:

- ``off``: ``PORTSIDE_TRACING=off``: OpenTelemetry is never imported (what a process without
  the ``otel`` extra runs);
- ``api-auto``: the default ``PORTSIDE_TRACING=auto`` with ``opentelemetry-api`` installed
  but no SDK configured: resolved to the untraced path at start-up;
- ``api-on``: ``PORTSIDE_TRACING=on`` without an SDK: the traced code path with the API's
  no-op spans (what the per-attempt wrapper costs by itself);
- ``sdk-memory``: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` exporting to an
  ``InMemorySpanExporter``, installed by the app module at import: a recorded ``process``
  span per attempt and trace ids in every log line of an attempt.

The jobs are pre-loaded without trace context (an untraced producer), so each attempt starts
a trace. Reported: jobs/s median [min-max] and the ratio of each mode's median to ``off``'s,
and consumer CPU per job.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (
    QUICK_RUNS,
    RUNS,
    RedisServer,
    durable_postgres,
    footer,
    header,
    median,
    run_rotated,
    spread,
)
from _consumers import WORKLOADS, Bench, Sample, Workload, cost_columns, show_rate, throughput

from portside.adapters.postgres import migrate

FULL_JOBS = 20_000
QUICK_JOBS = 5_000
MODES: dict[str, dict[str, str]] = {
    "off": {"PORTSIDE_TRACING": "off"},
    "api-auto": {"PORTSIDE_TRACING": "auto"},
    "api-on": {"PORTSIDE_TRACING": "on"},
    "sdk-memory": {"PORTSIDE_TRACING": "auto", "BENCH_OTEL_SDK": "1"},
}
LABELS = {
    "off": "tracing off (PORTSIDE_TRACING=off)",
    "api-auto": "API installed, no SDK (auto: untraced path)",
    "api-on": "API only, traced path forced (no-op spans)",
    "sdk-memory": "SDK, BatchSpanProcessor -> InMemorySpanExporter",
}

APP = '''"""The benchmark registry, with an OpenTelemetry SDK when BENCH_OTEL_SDK=1 (written by
benchmarks/tracing_overhead.py)."""

import os

from bench_registry import registry

if os.environ.get("BENCH_OTEL_SDK") == "1":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)

__all__ = ["registry"]
'''


@dataclass
class TracingBench(Bench):
    """A ``Bench`` whose full worker runs in the tracing mode ``mode``."""

    mode: str = "off"

    def __post_init__(self) -> None:
        super().__post_init__()
        (self.workdir / "bench_tracing.py").write_text(APP)

    def worker_env(self, prefix: str, *, wait_for_flush: bool = True) -> dict[str, str]:
        env = super().worker_env(prefix, wait_for_flush=wait_for_flush)
        env["PORTSIDE_APP"] = "bench_tracing:registry"
        env.pop("BENCH_OTEL_SDK", None)
        env.update(MODES[self.mode])
        return env


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(workload: Workload, samples: dict[str, list[Sample]], jobs: int) -> None:
    rates = {name: median([s.rate for s in runs]) for name, runs in samples.items()}
    base = rates["off"]
    print(f"\n{workload.title}, {jobs:,} jobs per run")
    print("| tracing | jobs/s median [range] | vs off | consumer CPU µs/job |")
    print("|---|---:|---:|---:|")
    for name, runs in samples.items():
        print(
            f"| {LABELS[name]} | {spread([s.rate for s in runs])} | "
            f"{rates[name] / base:.2f}x | {cost_columns(runs, lambda s: s.consumer_cpu)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS:,} jobs, 3 runs")
    parser.add_argument("--workloads", default="noop", help="noop, realistic")
    parser.add_argument("--jobs", type=int, help=f"jobs per run (default {FULL_JOBS:,})")
    parser.add_argument("--runs", type=int, help=f"runs per mode (default {RUNS})")
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    jobs = args.jobs or (QUICK_JOBS if args.quick else FULL_JOBS)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    workloads = [WORKLOADS[name.strip()] for name in args.workloads.split(",") if name.strip()]
    modes = list(MODES)

    print(header("Tracing overhead: portside worker with tracing off, API only, SDK"))
    print(
        "opentelemetry: api "
        f"{_version('opentelemetry-api')}, sdk {_version('opentelemetry-sdk')}; concurrency "
        f"{args.concurrency}; {runs} runs per mode, order rotating {' -> '.join(modes)}"
    )
    redis = RedisServer()
    postgres, described = durable_postgres()
    try:
        asyncio.run(migrate(postgres.dsn))
        print(f"redis: {redis.version}")
        print(f"postgres (run history): {described}", flush=True)
        with tempfile.TemporaryDirectory(prefix="portside-tracing-") as directory:
            bench = TracingBench(
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

                    def measure(mode: str, run: int, workload: Workload = workload) -> Sample:
                        bench.mode = mode
                        prefix = f"{workload.key}-r{run}-{mode}"
                        return throughput(bench, "worker-async", workload, jobs, prefix)

                    samples = run_rotated(modes, runs, measure, show_rate)
                    report(workload, samples, jobs)
            finally:
                bench.close()
    finally:
        postgres.stop()
        redis.stop()
    print(footer())


if __name__ == "__main__":
    main()
