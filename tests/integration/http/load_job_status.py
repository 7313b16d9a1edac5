"""Load check for ``GET /jobs/{id}`` (status poll, target p99 < 50 ms): a script and a library.

Run against a live API (for example ``portside dev``)::

    python tests/integration/http/load_job_status.py http://127.0.0.1:8000 --requests 5000

It enqueues ``--jobs`` ingest jobs through the API, then polls their status from
``--concurrency`` connections and prints p50/p95/p99/max in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import time
from dataclasses import dataclass

import httpx

__all__ = ["LatencyStats", "enqueue_jobs", "measure"]


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
) -> LatencyStats:
    """Poll random ids from ``job_ids``: ``requests`` in total over ``concurrency`` workers."""
    picker = random.Random(seed)
    plan = [picker.choice(job_ids) for _ in range(requests)]
    latencies: list[float] = []
    cursor = iter(plan)

    async def poll() -> None:
        for job_id in cursor:
            started = time.perf_counter()
            response = await client.get(f"/jobs/{job_id}")
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


async def _main(
    url: str, jobs: int, requests: int, concurrency: int, rounds: int, as_json: bool
) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        ids = await enqueue_jobs(client, jobs)
        await measure(client, ids, requests=min(200, requests), concurrency=concurrency)  # warm
        for _ in range(rounds):
            stats = await measure(client, ids, requests=requests, concurrency=concurrency)
            print(json.dumps(dataclasses.asdict(stats)) if as_json else stats.line(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="measure this many times")
    parser.add_argument("--json", action="store_true", help="one JSON object per round")
    options = parser.parse_args()
    asyncio.run(
        _main(
            options.url,
            options.jobs,
            options.requests,
            options.concurrency,
            options.rounds,
            options.json,
        )
    )
