"""E2: a queue Redis that would evict keys is reported by ``/health/queues`` and by
``portside worker`` at start-up, with the fix; memory use is reported against maxmemory.

The harness's Redis runs with ``noeviction``, so these tests start a private Redis with
``maxmemory 64mb`` and ``maxmemory-policy allkeys-lru``: a cache's settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from portside.adapters.bullmq import BullMQQueue
from portside.app.http import HttpSettings, create_app
from portside.examples.ingestion import build_registry
from portside.infra import Infra
from portside.servers import LocalRedis
from portside.testing import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LIMIT = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def lru_redis() -> Iterator[LocalRedis]:
    """A private Redis configured like a cache: 64 MiB, least recently used keys evicted."""
    server = LocalRedis(extra_args=("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"))
    with server:
        yield server


@pytest.fixture
async def lru_queue(lru_redis: LocalRedis, redis_prefix: str) -> AsyncIterator[BullMQQueue]:
    adapter = BullMQQueue(lru_redis.url, prefix=redis_prefix)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_e2_server_info_reads_the_eviction_policy_and_memory(lru_queue: BullMQQueue) -> None:
    info = await lru_queue.server_info()

    assert info.maxmemory_policy == "allkeys-lru"
    assert info.maxmemory == LIMIT
    assert info.used_memory is not None
    assert 0 < info.used_memory < LIMIT
    assert info.backend.split()[0] in ("redis", "valkey"), info.backend
    assert info.unreadable is None


@pytest.mark.parametrize(
    ("denied", "policy", "refused"),
    [
        ("-info", "allkeys-lru", ["INFO refused"]),
        ("-info -config", None, ["INFO refused", "CONFIG GET refused"]),
    ],
)
async def test_e2_a_managed_redis_that_refuses_info_or_config_is_handled(
    lru_redis: LocalRedis,
    redis_prefix: str,
    denied: str,
    policy: str | None,
    refused: list[str],
) -> None:
    """E2: a user without INFO (as on some managed Redis) gets the policy from CONFIG GET;
    without either, the policy is unknown and ``unreadable`` says what was refused."""
    user = f"limited-{redis_prefix.replace(':', '-')}"
    admin = redis.Redis.from_url(lru_redis.url, decode_responses=True)
    await admin.acl_setuser(
        user,
        enabled=True,
        passwords=["+secret"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", *denied.split()],
    )
    adapter = BullMQQueue(
        lru_redis.url.replace("redis://", f"redis://{user}:secret@"), prefix=redis_prefix
    )
    try:
        info = await adapter.server_info()
    finally:
        await adapter.close()
        await admin.acl_deluser(user)
        await admin.aclose()

    assert info.maxmemory_policy == policy
    assert info.unreadable is not None
    for words in refused:
        assert words in info.unreadable


async def test_e2_health_warns_about_an_evicting_queue_redis(
    lru_queue: BullMQQueue, infra: Infra
) -> None:
    """E2: ``/health/queues`` reports the eviction policy as an alert with the fix, and memory
    use against maxmemory."""
    app = create_app(
        Infra(queue=lru_queue, outbox=infra.outbox, history=infra.history, name="lru"),
        build_registry(),
        HttpSettings(admin_token="t" * 32),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        report = (await client.get("/health/queues")).json()

    assert report["status"] == "alert"
    server = report["queueServer"]
    assert server["status"] == "warning"
    assert server["maxmemoryPolicy"] == "allkeys-lru"
    assert server["maxmemoryBytes"] == LIMIT
    assert 0 < server["memoryUsedRatio"] < 1
    (warning,) = server["warnings"]
    assert warning["rule"] == "eviction"
    assert "maxmemory-policy allkeys-lru" in warning["message"]
    assert "CONFIG SET maxmemory-policy noeviction" in warning["fix"]


async def test_e2_health_is_ok_on_a_noeviction_redis(infra: Infra) -> None:
    app = create_app(infra, build_registry(), HttpSettings(admin_token="t" * 32))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        report = (await client.get("/health/queues")).json()

    assert report["queueServer"]["status"] == "ok"
    assert report["queueServer"]["maxmemoryPolicy"] == "noeviction"
    assert report["queueServer"]["warnings"] == []


async def test_e2_portside_worker_warns_at_start_up(
    lru_redis: LocalRedis, redis_prefix: str, postgres_dsn: str
) -> None:
    """E2: ``portside worker`` on an evicting Redis logs ``queue.server_eviction`` (WARNING)
    with the fix, and ``queue.server`` with memory use against maxmemory; it still runs."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PORTSIDE_REDIS_URL": lru_redis.url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
        "PORTSIDE_APP": "portside.examples.ingestion:registry",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portside.app.cli", "worker", "--grace", "5",
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    events: list[dict[str, Any]] = []

    async def read() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            try:
                events.append(json.loads(raw))
            except json.JSONDecodeError:
                continue

    reader = asyncio.create_task(read())
    try:
        await wait_for(
            lambda: any(e["event"] == "worker.ready" for e in events) or reader.done(),
            timeout=60,
            message="the worker to log worker.ready",
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            code = await process.wait()
            await reader
    assert code == 0, events[-5:]
    names = [e["event"] for e in events]
    assert names.index("queue.server_eviction") < names.index("worker.ready")
    warning = next(e for e in events if e["event"] == "queue.server_eviction")
    assert warning["level"] == "warning"
    assert "allkeys-lru" in warning["message"]
    assert "noeviction" in warning["fix"]
    memory = next(e for e in events if e["event"] == "queue.server")
    assert memory["maxmemory"] == LIMIT
    assert 0 < memory["memory_used"] < 1
