"""The consumers the queue benchmarks race, and one protocol that times them all alike.

Contenders (each in a process of its own):

- ``node``: Node BullMQ's ``Worker`` (the pinned version in ``_common.NODE_PINS``);
- ``node-ap``: the same with ioredis ``enableAutoPipelining: true``;
- ``bullmq``: the Python ``bullmq`` package's ``Worker``;
- ``bare``: portside's bare adapter, ``BullMQQueue.consume`` with the handler alone;
- ``worker``: the real ``portside worker`` CLI with everything on: run history in Postgres,
  JSON logs at INFO to a file, Prometheus metrics on a port.

Protocol of one measurement (``Bench.throughput``): pre-load the jobs into a fresh, paused
queue (its own key prefix); start the consumer and wait until it says it is ready; sample
Redis CPU (``INFO cpu``), the consumer's CPU and Postgres's CPU (``/proc``); resume the queue
and time, in this process, until Redis holds none of the jobs left to run or running
(polling the queue's lists and sets every few milliseconds; the completed set would not do,
since the full worker keeps only the last 1,000 completed jobs); sample again; stop the
consumer with SIGTERM. Start-up is outside the timed part for every contender. For
``worker`` the run is then checked: exactly one completed run-history row per job, one
``job.completed`` log line per job, and the metrics endpoint counting every job, so a fast
but wrong worker cannot win. Redis is flushed and the run history truncated after each run.

``python benchmarks/_consumers.py serve ...`` is the Python child (``bullmq`` and ``bare``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from _common import NODE_DIR, RedisCpu, node_script, tree_cpu

from portside.adapters.bullmq import BullMQQueue
from portside.ports import JobOptions, NewJob

HERE = Path(__file__).resolve().parent

# JSON log lines, with or without a space after the colons.
_COMPLETED_LINE = re.compile(r'"event":\s*"job\.completed"')
_INFO_LINE = re.compile(r'"level":\s*"info"')

LABELS = {
    "node": "Node BullMQ Worker (bare)",
    "node-ap": "Node BullMQ Worker, enableAutoPipelining",
    "bullmq": "Python bullmq.Worker",
    "bare": "portside bare adapter (BullMQQueue.consume)",
    "worker": "portside worker (history+logs+metrics)",
    "worker-async": "portside worker (history+logs+metrics), history commits not waiting for "
    "the disk flush (PORTSIDE_HISTORY_SYNCHRONOUS_COMMIT=off)",
}
WORKERS = ("worker", "worker-async")
"""The contenders that are the full ``portside worker``."""


# ---------------------------------------------------------------- workloads


def _order(i: int, note: str = "") -> dict[str, Any]:
    lines = [
        {
            "sku": f"SKU-{(i * 7 + k) % 10_000:05d}",
            "qty": 1 + k % 3,
            "price_cents": 1999 + 10 * k,
            "name": "Stainless steel water bottle, 750 ml",
        }
        for k in range(6)
    ]
    return {
        "order_id": f"ord-{i:09d}",
        "customer_id": f"cus-{i % 5000:06d}",
        "currency": "EUR",
        "lines": lines,
        "note": note,
    }


_NOTE = "n" * max(0, 1024 - len(json.dumps(_order(0), separators=(",", ":"))))


@dataclass(frozen=True)
class Workload:
    """What the jobs carry and what their handler does."""

    key: str
    title: str
    queue: str
    job: str
    handler_ms: float
    unique_ids: bool

    def payload(self, i: int) -> dict[str, Any]:
        return _order(i, _NOTE) if self.key == "realistic" else {"i": i}

    def options(self, prefix: str, i: int) -> JobOptions | None:
        # Caller-chosen ids, unique per run (the prefix is the run's).
        return JobOptions(job_id=f"{prefix}-order-{i}") if self.unique_ids else None


NOOP = Workload("noop", "no-op jobs", "bench-noop", "noop", 0.0, False)
REALISTIC = Workload(
    "realistic",
    "~1 KB payloads, caller-chosen unique job ids, handlers that await 1 ms",
    "bench-orders",
    "order",
    1.0,
    True,
)
STAMP = Workload("stamp", "latency stamps", "bench-e2e", "stamp", 0.0, False)
WORKLOADS = {w.key: w for w in (NOOP, REALISTIC)}

PAYLOAD_BYTES = len(json.dumps(REALISTIC.payload(123_456), separators=(",", ":")))

REGISTRY = '''"""Job registry of the portside benchmarks (written by benchmarks/_consumers.py)."""

from __future__ import annotations

import asyncio
import os
import time

from pydantic import BaseModel

from portside.app import JobContext, JobDefinition, Registry


class Noop(BaseModel):
    i: int


class Line(BaseModel):
    sku: str
    qty: int
    price_cents: int
    name: str


class Order(BaseModel):
    order_id: str
    customer_id: str
    currency: str
    lines: list[Line]
    note: str


class Stamp(BaseModel):
    i: int
    s: int
    a: int


async def noop(payload: Noop, ctx: JobContext) -> None:
    return None


async def order(payload: Order, ctx: JobContext) -> None:
    await asyncio.sleep(0.001)


async def stamp(payload: Stamp, ctx: JobContext) -> dict[str, int]:
    # First thing the handler does: when it started (CLOCK_MONOTONIC, microseconds).
    started = time.monotonic_ns() // 1000
    return {"i": payload.i, "h": started}


concurrency = int(os.environ.get("BENCH_CONCURRENCY", "50"))
registry = Registry()
registry.register(
    JobDefinition(
        name="noop", queue="bench-noop", payload=Noop, handler=noop, concurrency=concurrency
    )
)
registry.register(
    JobDefinition(
        name="order",
        queue="bench-orders",
        payload=Order,
        handler=order,
        concurrency=concurrency,
        business_keys=("order_id", "customer_id"),
    )
)
registry.register(
    JobDefinition(
        name="stamp", queue="bench-e2e", payload=Stamp, handler=stamp, concurrency=concurrency
    )
)
'''

NODE_CONSUMER = r"""
'use strict';
const { Worker } = require('bullmq');
const IORedis = require('ioredis');
const [url, prefix, name, concurrency, autopipe, sleepMs, stamp] = process.argv.slice(2);
const connection = new IORedis(url, {
  maxRetriesPerRequest: null, enableAutoPipelining: autopipe === '1',
});
const wait = Number(sleepMs);
const stamps = [];
let processor;
if (stamp === '1') {
  processor = async (job) => {
    const started = Number(process.hrtime.bigint() / 1000n);  // CLOCK_MONOTONIC, µs
    stamps.push([job.data.i, started]);
    return null;
  };
} else if (wait > 0) {
  processor = () => new Promise((resolve) => setTimeout(() => resolve(null), wait));
} else {
  processor = async () => null;
}
const options = { connection, prefix, concurrency: Number(concurrency) };
const worker = new Worker(name, processor, options);
worker.on('error', (error) => console.error(String(error)));
worker.waitUntilReady().then(() => console.log('ready'));
let stopping = false;
process.on('SIGTERM', async () => {
  if (stopping) return;
  stopping = true;
  await worker.close();
  await connection.quit();
  process.stdout.write(JSON.stringify({ stamps }) + '\n', () => process.exit(0));
});
"""


# ---------------------------------------------------------------- the Python child

CLOSE_BOUND = 10.0
"""Seconds the ``bullmq`` child waits for ``bullmq.Worker.close()`` before it exits anyway."""


async def _serve(args: argparse.Namespace) -> None:
    """Consume until SIGTERM; print ``ready`` once consuming, then the stamps at the end."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    stamps: list[tuple[int, int]] = []
    pause = args.sleep_ms / 1000

    def record(data: Any) -> None:
        started = time.monotonic_ns() // 1000
        stamps.append((data["i"], started))

    if args.kind == "bare":
        adapter = BullMQQueue(args.url, prefix=args.prefix)

        async def handler(job: Any) -> None:
            if args.stamp:
                record(job.data)
            elif pause:
                await asyncio.sleep(pause)

        worker = adapter.consume(args.queue, handler, concurrency=args.concurrency)
        await worker.start()
        print("ready", flush=True)
        await stop.wait()
        await worker.close(5)
        await adapter.close()
    else:
        from bullmq import Worker

        async def processor(job: Any, token: str) -> None:
            if args.stamp:
                record(job.data)
            elif pause:
                await asyncio.sleep(pause)

        options = {"connection": args.url, "prefix": args.prefix, "concurrency": args.concurrency}
        bull = Worker(args.queue, processor, options)
        await asyncio.sleep(0.05)  # bullmq.Worker connects in the background
        print("ready", flush=True)
        await stop.wait()
        # The stamps first: bullmq.Worker.close() has been seen to hang for over a minute
        # (it waits out its blocking connection and absorbs cancellation), and what was
        # measured must not depend on how the baseline shuts down.
        print(json.dumps({"stamps": stamps}), flush=True)
        closing = asyncio.ensure_future(bull.close())
        done, _ = await asyncio.wait({closing}, timeout=CLOSE_BOUND)
        if not done:
            print(
                f"note: bullmq.Worker.close() still running after {CLOSE_BOUND:g} s",
                file=sys.stderr,
            )
            sys.stderr.flush()
            os._exit(0)
        return
    print(json.dumps({"stamps": stamps}), flush=True)


# ---------------------------------------------------------------- launching


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free on every address right now."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base: int = sock.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("0.0.0.0", port))  # the metrics server listens on 0.0.0.0
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise SystemExit(f"found no {count} consecutive free ports")


def portside_command() -> list[str]:
    """The ``portside`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("portside")
    return [str(script)] if script.exists() else [sys.executable, "-m", "portside.app.cli"]


@dataclass
class Consumer:
    """A started consumer process."""

    contender: str
    proc: subprocess.Popen[str]
    errors: IO[str]
    startup: float
    log: Path | None = None
    metrics_ports: tuple[int, ...] = ()

    def tail(self) -> str:
        self.errors.flush()
        self.errors.seek(0)
        lines = self.errors.read().splitlines()[-15:]
        if self.log is not None and self.log.exists():
            with self.log.open() as log:
                lines += [line for line in log if not _INFO_LINE.search(line)][-15:]
        return "\n".join(lines)

    def stop(self, timeout: float = 60) -> str:
        """SIGTERM, wait for the exit; what it printed on stdout after ``ready``."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise SystemExit(
                f"{self.contender} did not stop in {timeout} s:\n{self.tail()}"
            ) from None
        if self.proc.returncode != 0:
            raise SystemExit(f"{self.contender} exited with {self.proc.returncode}:\n{self.tail()}")
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Bench:
    """The servers and settings one benchmark's measurements share."""

    redis_url: str
    redis_pid: int | None
    workdir: Path
    concurrency: int = 50
    postgres_dsn: str | None = None
    postgres_pid: int | None = None

    def __post_init__(self) -> None:
        (self.workdir / "bench_registry.py").write_text(REGISTRY)
        self.cpu = RedisCpu(self.redis_url)

    def close(self) -> None:
        self.cpu.close()

    # -- consumers

    def launch(
        self,
        contender: str,
        prefix: str,
        workload: Workload,
        *,
        stamp: bool = False,
        processes: int = 1,
    ) -> Consumer:
        errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed with the process
        launched = time.perf_counter()
        if contender in WORKERS:
            return self._launch_worker(
                prefix, workload, processes, errors, launched, wait_for_flush=contender == "worker"
            )
        if contender in ("node", "node-ap"):
            script = node_script("bench-consumer.js", NODE_CONSUMER)
            command = ["node", script, self.redis_url, prefix, workload.queue]
            command += [str(self.concurrency), "1" if contender == "node-ap" else "0"]
            command += [str(workload.handler_ms), "1" if stamp else "0"]
            cwd: str | None = str(NODE_DIR)
        else:
            command = [sys.executable, str(HERE / "_consumers.py"), "serve", contender]
            command += ["--url", self.redis_url, "--prefix", prefix, "--queue", workload.queue]
            command += ["--concurrency", str(self.concurrency)]
            command += ["--sleep-ms", str(workload.handler_ms)] + (["--stamp"] if stamp else [])
            cwd = None
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=cwd)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        consumer = Consumer(contender, proc, errors, time.perf_counter() - launched)
        if line != "ready":
            consumer.kill()
            raise SystemExit(f"{contender} did not start (it said {line!r}):\n{consumer.tail()}")
        return consumer

    def worker_env(self, prefix: str, *, wait_for_flush: bool = True) -> dict[str, str]:
        if self.postgres_dsn is None:
            raise SystemExit("the portside worker contender needs Postgres")
        path = os.pathsep.join(filter(None, [str(self.workdir), os.environ.get("PYTHONPATH")]))
        # Only the settings below: none inherited (e.g. PORTSIDE_LOG_LEVEL) changes the worker.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
        return {
            **inherited,
            "PYTHONPATH": path,
            "PORTSIDE_APP": "bench_registry:registry",
            "PORTSIDE_REDIS_URL": self.redis_url,
            "PORTSIDE_REDIS_PREFIX": prefix,
            "PORTSIDE_POSTGRES_DSN": self.postgres_dsn,
            "PORTSIDE_LOG_LEVEL": "INFO",
            "PORTSIDE_HISTORY_SYNCHRONOUS_COMMIT": "on" if wait_for_flush else "off",
            "BENCH_CONCURRENCY": str(self.concurrency),
        }

    def _launch_worker(
        self,
        prefix: str,
        workload: Workload,
        processes: int,
        errors: IO[str],
        launched: float,
        *,
        wait_for_flush: bool = True,
    ) -> Consumer:
        log = self.workdir / f"worker-{prefix}.log"
        port = free_ports(processes)
        command = [*portside_command(), "worker", "--queues", workload.queue]
        command += ["--processes", str(processes), "--grace", "30", "--metrics-port", str(port)]
        with log.open("w") as out:
            proc = subprocess.Popen(
                command,
                env=self.worker_env(prefix, wait_for_flush=wait_for_flush),
                stdout=errors,
                stderr=out,
                text=True,
            )
        name = "worker" if wait_for_flush else "worker-async"
        consumer = Consumer(name, proc, errors, 0.0, log, tuple(range(port, port + processes)))
        ready = 0
        deadline = time.monotonic() + 120
        with log.open() as reader:
            while ready < processes:
                line = reader.readline()
                if not line:
                    if proc.poll() is not None:
                        raise SystemExit(f"portside worker exited early:\n{consumer.tail()}")
                    if time.monotonic() > deadline:
                        consumer.kill()
                        raise SystemExit(f"portside worker not ready in 120 s:\n{consumer.tail()}")
                    time.sleep(0.002)
                    continue
                if '"worker.ready"' in line:
                    ready += 1
        consumer.startup = time.perf_counter() - launched
        return consumer

    # -- queues

    async def preload(self, prefix: str, workload: Workload, jobs: int) -> None:
        """``jobs`` jobs on the workload's queue under ``prefix``, the queue paused."""
        adapter = BullMQQueue(self.redis_url, prefix=prefix)
        try:
            await adapter.pause(workload.queue)
            for start in range(0, jobs, 1000):
                batch = [
                    NewJob(
                        name=workload.job,
                        data=workload.payload(i),
                        options=workload.options(prefix, i),
                    )
                    for i in range(start, min(jobs, start + 1000))
                ]
                await adapter.enqueue_bulk(workload.queue, batch)
        finally:
            await adapter.close()

    async def wait_completed(
        self, prefix: str, queue: str, jobs: int, consumer: Consumer, timeout: float = 900
    ) -> None:
        """Poll until none of the ``jobs`` is left to run or running (fail on a failed job).

        Counts what is left (waiting, paused, prioritized, delayed, active), not the
        completed set: a consumer that keeps only the last N finished jobs (the platform's
        default retention) trims that set as it goes.
        """
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis_url)
        key = f"{prefix}:{queue}:".__add__
        deadline = time.monotonic() + timeout
        try:
            while True:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.llen(key("wait")).llen(key("paused")).llen(key("active"))
                    pipe.zcard(key("prioritized")).zcard(key("delayed")).zcard(key("failed"))
                    *left, bad = await pipe.execute()
                if bad:
                    raise SystemExit(f"{bad} jobs failed under {consumer.contender}")
                if not any(left):
                    return
                done = jobs - sum(left)
                if consumer.proc.poll() is not None:
                    raise SystemExit(f"{consumer.contender} exited:\n{consumer.tail()}")
                if time.monotonic() > deadline:
                    raise SystemExit(f"{consumer.contender}: {done}/{jobs} done after {timeout}s")
                await asyncio.sleep(0.003)
        finally:
            await client.aclose()

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushall()
        finally:
            client.close()

    # -- checks of the full worker

    def processed_metric(self, consumer: Consumer, queue: str) -> float:
        total = 0.0
        for port in consumer.metrics_ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                text = page.read().decode()
            for line in text.splitlines():
                completed = line.startswith("portside_attempts_completed_total{")
                if completed and f'queue="{queue}"' in line:
                    total += float(line.rsplit(" ", 1)[1])
        return total

    async def history(self, queue: str) -> tuple[int, int, int]:
        """(rows, completed rows, distinct job ids of completed rows) of ``queue``."""
        import asyncpg

        assert self.postgres_dsn is not None
        conn = await asyncpg.connect(self.postgres_dsn)
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS rows, count(*) FILTER (WHERE status = 'completed') AS done, "
                "count(DISTINCT job_id) FILTER (WHERE status = 'completed') AS ids "
                "FROM job_runs WHERE queue = $1",
                queue,
            )
        finally:
            await conn.close()
        assert row is not None
        return int(row["rows"]), int(row["done"]), int(row["ids"])

    async def history_results(self, queue: str) -> list[Any]:
        import asyncpg

        assert self.postgres_dsn is not None
        conn = await asyncpg.connect(self.postgres_dsn)
        try:
            rows = await conn.fetch(
                "SELECT result FROM job_runs WHERE queue = $1 AND status = 'completed'", queue
            )
        finally:
            await conn.close()
        return [json.loads(row["result"]) for row in rows if row["result"] is not None]

    async def truncate_history(self) -> None:
        import asyncpg

        assert self.postgres_dsn is not None
        conn = await asyncpg.connect(self.postgres_dsn)
        try:
            await conn.execute("TRUNCATE job_runs, job_failures")
        finally:
            await conn.close()

    async def check_worker(self, consumer: Consumer, queue: str, jobs: int) -> None:
        """Exactly one completed history row and one ``job.completed`` log line per job."""
        rows, done, ids = await self.history(queue)
        if not rows == done == ids == jobs:
            raise SystemExit(
                f"run history of {queue!r} is wrong after {jobs} jobs: {rows} rows, {done} "
                f"completed, {ids} distinct job ids completed (want {jobs} of each)"
            )
        assert consumer.log is not None
        logged = len(_COMPLETED_LINE.findall(consumer.log.read_text()))
        if logged != jobs:
            raise SystemExit(f"{logged} job.completed log lines after {jobs} jobs")


@dataclass(frozen=True)
class Sample:
    """One timed run of one contender."""

    jobs: int
    seconds: float
    redis_cpu: float
    consumer_cpu: float | None
    postgres_cpu: float | None
    startup: float

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    def per_job_us(self, cpu: float | None) -> float | None:
        return None if cpu is None else cpu / self.jobs * 1e6


def throughput(
    bench: Bench,
    contender: str,
    workload: Workload,
    jobs: int,
    prefix: str,
    *,
    processes: int = 1,
) -> Sample:
    """One measurement of ``contender`` on ``jobs`` pre-loaded jobs (see the module doc)."""
    asyncio.run(bench.preload(prefix, workload, jobs))
    consumer = bench.launch(contender, prefix, workload, processes=processes)
    try:
        sample = asyncio.run(_timed(bench, consumer, prefix, workload, jobs))
        if contender in WORKERS:
            counted = bench.processed_metric(consumer, workload.queue)
            if counted != jobs:
                raise SystemExit(f"metrics count {counted:.0f} processed jobs, want {jobs}")
        consumer.stop()
        if contender in WORKERS:
            asyncio.run(bench.check_worker(consumer, workload.queue, jobs))
    finally:
        consumer.kill()
        if consumer.log is not None:
            consumer.log.unlink(missing_ok=True)
        bench.flush()
        if bench.postgres_dsn is not None and contender in WORKERS:
            asyncio.run(bench.truncate_history())
    return sample


async def _timed(
    bench: Bench, consumer: Consumer, prefix: str, workload: Workload, jobs: int
) -> Sample:
    adapter = BullMQQueue(bench.redis_url, prefix=prefix)
    try:
        watched = consumer.proc.pid
        with_pg = consumer.contender in WORKERS
        redis0, own0 = bench.cpu.sample(), tree_cpu(watched)
        pg0 = tree_cpu(bench.postgres_pid) if with_pg else None
        started = time.perf_counter()
        await adapter.resume(workload.queue)
        await bench.wait_completed(prefix, workload.queue, jobs, consumer)
        elapsed = time.perf_counter() - started
        redis1, own1 = bench.cpu.sample(), tree_cpu(watched)
        pg1 = tree_cpu(bench.postgres_pid) if with_pg else None
    finally:
        await adapter.close()
    return Sample(
        jobs=jobs,
        seconds=elapsed,
        redis_cpu=redis1 - redis0,
        consumer_cpu=_delta(own0, own1),
        postgres_cpu=_delta(pg0, pg1),
        startup=consumer.startup,
    )


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def show_rate(sample: Sample) -> str:
    return f"{sample.rate:>9,.0f} jobs/s"


def cost_columns(samples: list[Sample], pick: Callable[[Sample], float | None]) -> str:
    """Median µs per job of a CPU figure over the samples, ``n/a`` when unmeasured."""
    from _common import spread

    values = [v for v in (s.per_job_us(pick(s)) for s in samples) if v is not None]
    return spread(values, "{:.1f}") if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description="Python consumer child of the benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("kind", choices=["bare", "bullmq"])
    serve.add_argument("--url", required=True)
    serve.add_argument("--prefix", required=True)
    serve.add_argument("--queue", required=True)
    serve.add_argument("--concurrency", type=int, default=50)
    serve.add_argument("--sleep-ms", type=float, default=0.0)
    serve.add_argument("--stamp", action="store_true")
    args = parser.parse_args()
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
