"""OBS3 on real servers: a worker's port answers /livez, /readyz and /metrics; readiness
needs portside's migrations in the database."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from pydantic import BaseModel

from portside.adapters.postgres.history import PostgresHistory
from portside.app import JobContext, JobDefinition, Registry, WorkerRuntime
from portside.app.probe_server import ProbeServer
from portside.app.readiness import Readiness
from portside.infra import Infra

pytestmark = pytest.mark.integration


class Empty(BaseModel):
    pass


async def nothing(payload: Empty, ctx: JobContext) -> None:
    return None


def _registry() -> Registry:
    return Registry([JobDefinition(name="noop", queue="probes:q", payload=Empty, handler=nothing)])


async def test_a_worker_port_answers_livez_readyz_and_metrics(platform_infra: Infra) -> None:
    """OBS3: while its consumers fetch, a worker's /readyz is 200 with every check ok; /livez
    answers; /metrics is the worker's registry; once stopped, /readyz says the workers are not
    fetching."""
    runtime = WorkerRuntime(_registry(), platform_infra, sample_interval=None)
    readiness = Readiness(
        platform_infra.queue, platform_infra.history, workers=runtime.status, cache_seconds=0
    )
    server = ProbeServer(
        runtime.metrics.registry, readiness, asyncio.get_running_loop(), 0, host="127.0.0.1"
    )
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        await runtime.start()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            live = await client.get("/livez")
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
            assert live.status_code == 200
            assert ready.status_code == 200, ready.text
            checks = ready.json()["checks"]
            assert {name: check["status"] for name, check in checks.items()} == {
                "queue_server": "ok",
                "postgres": "ok",
                "workers": "ok",
            }
            assert "portside_worker_startup_seconds" in metrics.text
            await runtime.stop()
            stopped = await client.get("/readyz")
            assert stopped.status_code == 503
            assert stopped.json()["checks"]["workers"]["status"] == "failed"
    finally:
        await runtime.stop()
        server.stop()


async def test_a_database_without_portside_migrations_is_not_ready(postgres_dsn: str) -> None:
    """OBS3: Postgres answering is not enough: every portside migration must be applied."""
    name = f"bare_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(postgres_dsn)
        bare = urlunsplit(parts._replace(path=f"/{name}"))
        history = PostgresHistory(bare)
        migrated = PostgresHistory(postgres_dsn)
        try:
            pending = await history.pending_migrations()
            assert pending[:1] == ["0001"]
            assert await migrated.pending_migrations() == []
        finally:
            await history.close()
            await migrated.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
