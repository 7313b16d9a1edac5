"""The example jobs and their registry: daily ingestion and aggregation, three dataset syncs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from portside.app.context import JobContext
from portside.app.definition import JobDefinition, JobSchedule, RetryPolicy
from portside.app.dispatching import dispatch
from portside.app.registry import Registry
from portside.examples.ingestion.payloads import AggregatePayload, IngestPayload, SyncPayload
from portside.examples.ingestion.sources import (
    FakeSourceClient,
    SourceAuthError,
    SourceClient,
    SourceUnavailableError,
)
from portside.examples.ingestion.store import ExampleStore, SqlExampleStore
from portside.ports import Backoff, FailureKind, RateLimit

__all__ = ["ExampleJobs", "build_registry"]

CLASSIFICATION: dict[type[BaseException], FailureKind] = {
    SourceUnavailableError: "transient",
    SourceAuthError: "permanent",
}
SOURCE_RETRY = RetryPolicy(attempts=3, backoff=Backoff.schedule(1, 5, 30))
SYNC_RETRY = RetryPolicy(attempts=4, backoff=Backoff.exponential(5))


DEMO_ORGANIZATION = {"organizationId": "org-demo", "integrationId": "int-demo"}
"""Whom the daily ingestion schedule ingests (a real deployment has one schedule, or one
backfill, per integration)."""


def _yesterday(ctx: JobContext) -> date:
    return ctx.now().date() - timedelta(days=1)


class ExampleJobs:
    """Handlers of the example jobs, bound to a source client and a store."""

    def __init__(self, registry: Registry, source: SourceClient, store: ExampleStore) -> None:
        self.registry = registry
        self.source = source
        self.store = store

    async def ingest(self, payload: IngestPayload, ctx: JobContext) -> dict[str, Any]:
        """Copy one integration's records for a day; queue the day's aggregate if they changed."""
        day = payload.date or _yesterday(ctx)
        records = await self.source.fetch_records(
            payload.organizationId, payload.integrationId, day
        )
        changed = await self.store.upsert_records(
            payload.organizationId, payload.integrationId, day, records
        )
        aggregate = None
        if changed:
            ref = await dispatch(
                self.registry,
                ctx.infra.queue,
                "aggregate",
                {"organizationId": payload.organizationId, "date": day},
                mode=ctx.run_mode,
            )
            aggregate = ref.id
        ctx.log("ingest.stored", records=len(records), changed=changed)
        return {"records": len(records), "changed": changed, "aggregateJobId": aggregate}

    async def aggregate(self, payload: AggregatePayload, ctx: JobContext) -> dict[str, Any]:
        """Recompute an organisation's daily totals."""
        day = payload.date or _yesterday(ctx)
        result = await self.store.aggregate_day(payload.organizationId, day)
        return {"records": result.records, "total": str(result.total), "changed": result.changed}

    def _day(self, payload: SyncPayload, ctx: JobContext) -> date:
        return payload.date or ctx.now().date()

    async def sync_wholesale(self, payload: SyncPayload, ctx: JobContext) -> dict[str, Any]:
        """Sync a day of 5-minute wholesale prices."""
        day = self._day(payload, ctx)
        rows = await self.source.fetch_wholesale_prices(day)
        changed = await self.store.upsert_wholesale(rows)
        return {"date": day.isoformat(), "rows": len(rows), "changed": changed}

    async def sync_retail(self, payload: SyncPayload, ctx: JobContext) -> dict[str, Any]:
        """Sync the retail plans in force on a day."""
        day = self._day(payload, ctx)
        rows = await self.source.fetch_retail_plans(day)
        changed = await self.store.upsert_retail_plans(rows)
        return {"date": day.isoformat(), "rows": len(rows), "changed": changed}

    async def sync_housing(self, payload: SyncPayload, ctx: JobContext) -> dict[str, Any]:
        """Sync the housing series as published on a day."""
        day = self._day(payload, ctx)
        rows = await self.source.fetch_housing_series(day)
        changed = await self.store.upsert_housing(rows)
        return {"date": day.isoformat(), "rows": len(rows), "changed": changed}


def build_registry(
    *, source: SourceClient | None = None, store: ExampleStore | None = None
) -> Registry:
    """The example registry.

    Args:
        source: Where the jobs read; a ``FakeSourceClient`` by default.
        store: Where they write; ``SqlExampleStore`` (Postgres via the outbox) by default.
    """
    registry = Registry()
    jobs = ExampleJobs(registry, source or FakeSourceClient(), store or SqlExampleStore())
    registry.register(
        JobDefinition(
            name="ingest",
            queue="ingestion:ingest",
            payload=IngestPayload,
            handler=jobs.ingest,
            retry=SOURCE_RETRY,
            timeout=30,
            concurrency=5,
            rate_limit=RateLimit(max=60, per=60),
            schedule=JobSchedule(pattern="0 2 * * *", data=DEMO_ORGANIZATION),
            classification=CLASSIFICATION,
            business_keys=("organizationId", "integrationId", "date"),
            id_keys=("organizationId", "integrationId", "date"),
            date_field="date",
            description="Copy one organisation's integration records for one day.",
        )
    )
    registry.register(
        JobDefinition(
            name="aggregate",
            queue="ingestion:aggregate",
            payload=AggregatePayload,
            handler=jobs.aggregate,
            retry=SOURCE_RETRY,
            timeout=60,
            concurrency=2,
            schedule=JobSchedule(
                pattern="30 3 * * *", data={"organizationId": DEMO_ORGANIZATION["organizationId"]}
            ),
            business_keys=("organizationId", "date"),
            id_keys=("organizationId", "date"),
            date_field="date",
            description="Recompute one organisation's totals for one day.",
        )
    )
    syncs = (
        ("sync-energy-wholesale-5m", "sync:energy", jobs.sync_wholesale, JobSchedule(every=300)),
        (
            "sync-energy-retail-prd-hourly",
            "sync:energy",
            jobs.sync_retail,
            JobSchedule(pattern="0 * * * *"),
        ),
        (
            "sync-housing-abs-daily",
            "sync:housing",
            jobs.sync_housing,
            JobSchedule(pattern="0 6 * * *", timezone="Australia/Sydney"),
        ),
    )
    for name, queue, handler, schedule in syncs:
        registry.register(
            JobDefinition(
                name=name,
                queue=queue,
                payload=SyncPayload,
                handler=handler,
                retry=SYNC_RETRY,
                timeout=120,
                concurrency=2,
                schedule=schedule,
                classification=CLASSIFICATION,
                business_keys=("date",),
                id_keys=("date",),
                date_field="date",
                description=f"Sync the {name.removeprefix('sync-')} dataset for one day.",
            )
        )
    return registry
