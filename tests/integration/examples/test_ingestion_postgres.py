"""A7: example jobs write idempotently to Postgres through the outbox's transaction."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from portside.app import WorkerRuntime, dispatch
from portside.examples.ingestion import build_registry
from portside.infra import Infra

pytestmark = pytest.mark.integration

TABLES = (
    "example_energy_wholesale_prices",
    "example_energy_retail_plans",
    "example_housing_abs",
    "example_ingested_records",
    "example_daily_aggregates",
)


async def snapshot(db: asyncpg.Connection) -> dict[str, list[Any]]:
    """Every row with its xmin: an UPDATE that rewrote a row with equal values would show."""
    return {
        table: [
            tuple(row) for row in await db.fetch(f"SELECT xmin::text, * FROM {table} ORDER BY 2, 3")
        ]
        for table in TABLES
    }


async def run_all(infra: Infra, runtime: WorkerRuntime, drain_queue: Any) -> None:
    registry = runtime.registry
    for name in (
        "sync-energy-wholesale-5m",
        "sync-energy-retail-prd-hourly",
        "sync-housing-abs-daily",
    ):
        await dispatch(registry, infra.queue, name, {"date": "2024-05-01"})
    await dispatch(
        registry,
        infra.queue,
        "ingest",
        {"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"},
    )
    for queue in ("sync:energy", "sync:housing", "ingestion:ingest", "ingestion:aggregate"):
        await drain_queue(queue)


async def test_a7_replaying_sync_jobs_leaves_the_tables_unchanged(
    platform_infra: Infra, db: asyncpg.Connection, drain_queue: Any
) -> None:
    runtime = WorkerRuntime(
        build_registry(), platform_infra, sample_interval=None, retention_interval=None
    )
    async with runtime:
        await run_all(platform_infra, runtime, drain_queue)
        first = await snapshot(db)
        await run_all(platform_infra, runtime, drain_queue)
        second = await snapshot(db)

    assert len(first["example_energy_wholesale_prices"]) == 5 * 288
    assert len(first["example_energy_retail_plans"]) == 20
    assert len(first["example_housing_abs"]) == 48
    assert len(first["example_daily_aggregates"]) == 1
    assert second == first
    statuses = await db.fetch("SELECT job_name, status FROM job_runs ORDER BY id")
    assert {row["status"] for row in statuses} == {"completed"}
    assert await db.fetchval("SELECT count(*) FROM job_runs WHERE job_name = 'aggregate'") == 1
