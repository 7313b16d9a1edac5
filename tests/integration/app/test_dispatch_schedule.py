"""Q11, A5: scheduler bootstrap and backfills on real BullMQ, through the API and the CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from portside.app import plan_backfill, sync_schedules
from portside.examples.ingestion import build_registry
from portside.infra import Infra

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BASE = {"organizationId": "org-1", "integrationId": "xero-1"}


async def test_q11_scheduler_bootstrap_twice_creates_no_duplicates(platform_infra: Infra) -> None:
    registry = build_registry()

    first = await sync_schedules(registry, platform_infra.queue)
    energy = await platform_infra.queue.list_schedules("sync:energy")
    counts = await platform_infra.queue.counts("sync:energy")
    second = await sync_schedules(registry, platform_infra.queue)

    assert sorted(first.created) == [
        "ingestion:aggregate/aggregate",
        "ingestion:ingest/ingest",
        "sync:energy/sync-energy-retail-prd-hourly",
        "sync:energy/sync-energy-wholesale-5m",
        "sync:housing/sync-housing-abs-daily",
    ]
    assert second.created == second.updated == second.removed == []
    assert sorted(second.unchanged) == sorted(first.created)
    after = await platform_infra.queue.list_schedules("sync:energy")
    assert sorted(s.scheduler_id for s in after) == sorted(s.scheduler_id for s in energy)
    assert len(after) == 2
    assert await platform_infra.queue.counts("sync:energy") == counts
    assert len(await platform_infra.queue.list_schedules("sync:housing")) == 1


async def test_a5_backfill_of_30_days_enqueues_30_jobs_once(platform_infra: Infra) -> None:
    registry = build_registry()
    plan = plan_backfill(registry, "ingest", dt.date(2024, 5, 1), dt.date(2024, 5, 30), BASE)

    first = await plan.run(platform_infra.queue)
    second = await plan.run(platform_infra.queue)

    assert (first.enqueued, first.existing) == (30, 0)
    assert (second.enqueued, second.existing) == (0, 30)
    assert (await platform_infra.queue.counts("ingestion:ingest")).waiting == 30
    job = await platform_infra.queue.get_job("ingestion:ingest", "ingest.org-1.xero-1.2024-05-15")
    assert job is not None
    assert job.data["date"] == "2024-05-15"
    assert job.data["_portside"] == {"mode": "backfill"}


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "portside.app.cli",
        *args,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a5_cli_backfill_rerun_enqueues_none_and_migrate_is_idempotent(
    platform_infra: Infra, redis_url: str, redis_prefix: str, postgres_dsn: str
) -> None:
    env = {
        "PORTSIDE_REDIS_URL": redis_url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
        "PORTSIDE_APP": "portside.examples.ingestion:registry",
    }
    args = ["backfill", "ingest", "--from", "2024-05-01", "--to", "2024-05-30"]
    args += ["--data", '{"organizationId": "org-2", "integrationId": "xero-2"}']

    dry = await run_cli(*args, "--dry-run", env=env)
    real = await run_cli(*args, env=env)
    again = await run_cli(*args, env=env)
    migrated = await run_cli("migrate", env=env)
    bad = await run_cli("backfill", "ingest", "--from", "2024-05-01", "--to", "2024-04-01", env=env)

    assert dry[0] == 0, dry
    assert dry[1].strip().endswith("would enqueue 30, 0 already present"), dry
    assert real[0] == 0, real
    assert real[1].strip().endswith("enqueued 30, 0 already present"), real
    assert again[0] == 0, again
    assert again[1].strip().endswith("enqueued 0, 30 already present (waiting 30)")
    assert (await platform_infra.queue.counts("ingestion:ingest")).waiting == 30
    assert migrated == (0, "schema is up to date\n", "")
    assert bad[0] == 2
    assert (
        bad[2]
        == "error: --from 2024-05-01 is after --to 2024-04-01. give the earlier day as --from\n"
    )
