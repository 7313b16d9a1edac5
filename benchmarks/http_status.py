"""Status-poll latency of ``GET /jobs/{id}`` (requirement P: p99 < 50 ms).

Usage::

    python benchmarks/http_status.py                          # starts `portside dev` itself
    python benchmarks/http_status.py http://127.0.0.1:8000    # an API that is already running

It enqueues ``--jobs`` ingest jobs through the API, then polls their status from 1, 4 and 16
connections and prints p50/p95/p99/max in milliseconds, next to a baseline measured in the
same run on the same server: ``GET /docs``, a static page that touches no backend, so the
ratio is the cost of reading a job from Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

__all__ = ["LatencyStats", "enqueue_jobs", "measure"]

CONCURRENCY = (1, 4, 16)


@dataclass(frozen=True)
class LatencyStats:
    """Client-observed latencies of one load run, in milliseconds."""

    requests: int
    concurrency: int
    seconds: float
    p50: float
    p95: float
    p99: float
    max: float

    def line(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        return (
            f"GET /jobs/{{id}}: {self.requests} requests, concurrency {self.concurrency}, "
            f"{rate:.0f} req/s; p50 {self.p50:.2f} ms, p95 {self.p95:.2f} ms, "
            f"p99 {self.p99:.2f} ms, max {self.max:.2f} ms"
        )


async def enqueue_jobs(client: httpx.AsyncClient, count: int) -> list[str]:
    """Enqueue ``count`` ingest jobs (distinct payloads); their ids."""
    ids = []
    for index in range(count):
        body = {
            "organizationId": f"org-{index % 7}",
            "integrationId": f"load-{index}",
            "date": "2024-05-01",
        }
        response = await client.post("/jobs/ingest", json=body)
        response.raise_for_status()
        ids.append(response.json()["jobId"])
    return ids


def _percentile(sorted_values: list[float], share: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


async def measure(
    client: httpx.AsyncClient,
    job_ids: list[str],
    *,
    requests: int = 2000,
    concurrency: int = 16,
    seed: int = 8,
    path: str = "/jobs/{id}",
) -> LatencyStats:
    """GET ``path`` (``{id}`` = a random id of ``job_ids``) ``requests`` times over
    ``concurrency`` connections."""
    picker = random.Random(seed)
    plan = [path.format(id=picker.choice(job_ids)) for _ in range(requests)]
    latencies: list[float] = []
    cursor = iter(plan)

    async def poll() -> None:
        for url in cursor:
            started = time.perf_counter()
            response = await client.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text

    begin = time.perf_counter()
    await asyncio.gather(*(poll() for _ in range(concurrency)))
    elapsed = time.perf_counter() - begin
    ordered = sorted(latencies)
    return LatencyStats(
        requests=len(ordered),
        concurrency=concurrency,
        seconds=elapsed,
        p50=statistics.median(ordered),
        p95=_percentile(ordered, 0.95),
        p99=_percentile(ordered, 0.99),
        max=ordered[-1],
    )


async def _main(url: str, jobs: int, requests: int) -> None:
    print(f"GET /jobs/{{id}} vs GET /docs (baseline), {requests} requests per row, {jobs} jobs")
    print(f"{'concurrency':>11} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'base p50':>8} {'base p99':>8} {'p99 ratio':>9}")  # fmt: skip
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        ids = await enqueue_jobs(client, jobs)
    for concurrency in CONCURRENCY:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            await measure(client, ids, requests=min(200, requests), concurrency=concurrency)
            base = await measure(
                client, ids, requests=requests, concurrency=concurrency, path="/docs"
            )
            stats = await measure(client, ids, requests=requests, concurrency=concurrency)
        rate = stats.requests / stats.seconds
        print(f"{concurrency:>11} {rate:>7.0f} {stats.p50:>7.2f} {stats.p99:>7.2f} "
              f"{stats.max:>7.2f} {base.p50:>8.2f} {base.p99:>8.2f} "
              f"{stats.p99 / base.p99:>8.2f}x", flush=True)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _dev_server() -> Iterator[str]:
    """`portside dev` (embedded servers, worker, API) on a free port, stopped afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "portside.app.cli", "dev", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"portside dev exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/queues", timeout=1).status_code < 500:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("portside dev did not serve /health/queues within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="a running API; default: start portside dev")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    options = parser.parse_args()
    requests = 500 if options.quick else options.requests
    if options.url:
        asyncio.run(_main(options.url, options.jobs, requests))
    else:
        with _dev_server() as dev_url:
            asyncio.run(_main(dev_url, options.jobs, requests))
