"""Worker scaling: ``portside worker --processes N`` on pre-loaded no-op jobs, N = 1..cores.

Usage: python benchmarks/worker_scaling.py [--quick] [--jobs 20000] [--concurrency 50]

Starts a private Redis and Postgres (``portside.servers``), applies the migrations, writes a
one-job registry (a no-op handler on queue ``scaling``) to a temporary directory, then for each
N: pauses a fresh queue, pre-loads ``--jobs`` jobs, starts ``portside worker --processes N``
(real subprocesses, logging at INFO as in production), waits until all N log ``worker.ready``,
resumes the queue and times until every job is completed. Start-up is not in the jobs/s
figure; it is reported on its own (launch to every `worker.ready`, requirement P: < 500 ms).
Prints jobs/s per N and the ratio to N = 1 measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from _common import RedisServer, header

from portside.adapters.bullmq import BullMQQueue
from portside.adapters.postgres.migrations import migrate
from portside.ports import NewJob
from portside.servers import LocalPostgres

QUEUE = "scaling"
TARGET_STARTUP_S = 0.5
"""Requirement P: a worker is ready within 500 ms of its launch (interpreter start included)."""
REGISTRY = '''"""No-op job registry of benchmarks/worker_scaling.py."""

from __future__ import annotations

import os

from pydantic import BaseModel

from portside.app import JobContext, JobDefinition, Registry


class NoopPayload(BaseModel):
    i: int


async def noop(payload: NoopPayload, ctx: JobContext) -> None:
    return None


registry = Registry()
registry.register(
    JobDefinition(
        name="noop",
        queue="scaling",
        payload=NoopPayload,
        handler=noop,
        concurrency=int(os.environ["BENCH_CONCURRENCY"]),
    )
)
'''


class _ReadyCounter:
    """Drains a worker group's stderr (JSON log lines) and counts ``worker.ready``."""

    def __init__(self, stream: IO[str]) -> None:
        self.ready = 0
        self.tail: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                event = json.loads(line).get("event")
            except (json.JSONDecodeError, AttributeError):
                event = None
            if event == "worker.ready":
                self.ready += 1
            elif event is None:
                self.tail = [*self.tail[-20:], line.rstrip()]

    def join(self) -> None:
        self._thread.join(timeout=30)


async def _wait(predicate: Callable[[], bool | Awaitable[bool]], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)


async def _measure(
    processes: int, env: dict[str, str], redis_url: str, prefix: str, jobs: int
) -> tuple[float, float]:
    """(seconds from resume to the last completion, seconds from launch to every
    ``worker.ready``)."""
    adapter = BullMQQueue(redis_url, prefix=prefix)
    group: subprocess.Popen[str] | None = None
    try:
        await adapter.pause(QUEUE)
        for start in range(0, jobs, 1000):
            batch = [
                NewJob(name="noop", data={"i": i}) for i in range(start, min(jobs, start + 1000))
            ]
            await adapter.enqueue_bulk(QUEUE, batch)
        command = [sys.executable, "-m", "portside.app.cli", "worker"]
        command += ["--processes", str(processes), "--grace", "10"]
        launched = time.perf_counter()
        group = subprocess.Popen(
            command, env={**env, "PORTSIDE_REDIS_PREFIX": prefix}, stderr=subprocess.PIPE, text=True
        )
        assert group.stderr is not None
        counter = _ReadyCounter(group.stderr)

        def all_ready() -> bool:
            if group is not None and group.poll() is not None:
                raise SystemExit(f"worker group exited early: {counter.tail}")
            return counter.ready >= processes

        await _wait(all_ready, f"{processes} worker.ready log lines", 120)
        started = time.perf_counter()
        startup = started - launched
        await adapter.resume(QUEUE)

        async def finished() -> bool:
            counts = await adapter.counts(QUEUE)
            if counts.failed:
                raise SystemExit(f"{counts.failed} no-op jobs failed: {counter.tail}")
            return counts.completed >= jobs

        await _wait(finished, f"{jobs} completed jobs", 600)
        elapsed = time.perf_counter() - started
        group.send_signal(signal.SIGTERM)
        code = group.wait(timeout=60)
        counter.join()
        if code != 0:
            raise SystemExit(f"worker group exited with {code}: {counter.tail}")
        return elapsed, startup
    finally:
        if group is not None and group.poll() is None:
            group.kill()
            group.wait()
        await adapter.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 jobs instead of 20,000")
    parser.add_argument("--jobs", type=int, help="jobs per run (default 20,000; quick 5,000)")
    parser.add_argument("--concurrency", type=int, default=50, help="job concurrency per process")
    parser.add_argument("--max-processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    jobs = args.jobs or (5_000 if args.quick else 20_000)
    levels = list(range(1, args.max_processes + 1))

    print(header("Worker scaling: portside worker --processes N on pre-loaded no-op jobs"))
    redis = RedisServer()
    postgres = LocalPostgres().start()
    results: dict[int, float] = {}
    startups: dict[int, float] = {}
    try:
        asyncio.run(migrate(postgres.dsn))
        print(f"servers: {redis.version}; {postgres.install.describe()}", flush=True)
        with tempfile.TemporaryDirectory(prefix="portside-scaling-") as directory:
            (Path(directory) / "bench_noop_registry.py").write_text(REGISTRY)
            path = os.pathsep.join(filter(None, [directory, os.environ.get("PYTHONPATH")]))
            env = {
                **os.environ,
                "PYTHONPATH": path,
                "PORTSIDE_APP": "bench_noop_registry:registry",
                "PORTSIDE_REDIS_URL": redis.url,
                "PORTSIDE_POSTGRES_DSN": postgres.dsn,
                "PORTSIDE_LOG_LEVEL": "INFO",
                "BENCH_CONCURRENCY": str(args.concurrency),
            }
            for processes in levels:
                seconds, startups[processes] = asyncio.run(
                    _measure(processes, env, redis.url, f"s{processes}", jobs)
                )
                results[processes] = jobs / seconds
                print(f"  N={processes}: {results[processes]:.0f} jobs/s", flush=True)
    finally:
        postgres.stop()
        redis.stop()

    print(
        f"\n{jobs} no-op jobs pre-loaded per run; job concurrency {args.concurrency} per "
        "process; timed from resume to the last completion (start-up excluded)"
    )
    print("| processes | jobs/s | vs N=1 | per-process efficiency | start-up s |")
    print("|---|---|---|---|---|")
    for processes, rate in results.items():
        ratio = rate / results[1]
        print(
            f"| {processes} | {rate:.0f} | {ratio:.2f}x | {ratio / processes:.0%} | "
            f"{startups[processes]:.2f} |"
        )
    startup = startups[1]
    verdict = "met" if startup < TARGET_STARTUP_S else "NOT met"
    print(
        f"\ntarget worker start-up < {TARGET_STARTUP_S * 1000:.0f} ms (launch to worker.ready, "
        f"one process): {verdict} ({startup * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
