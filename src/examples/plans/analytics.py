"""The analytics plan: ``analytics-ingest`` copies a day of events from a source and
``analytics-aggregate`` rolls the day up, both daily job schedulers, both idempotent upserts
(re-running a day changes nothing)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from portside.app import JobContext, JobDefinition, JobSchedule, Registry, dispatch
from portside.examples.plans.db import fetch
from portside.examples.plans.retry import PLAN_RETRY

__all__ = [
    "AnalyticsEvent",
    "AnalyticsJobs",
    "AnalyticsSource",
    "DayPayload",
    "FakeAnalyticsSource",
    "SourceDayPayload",
    "register_analytics",
]

KINDS = ("page_view", "signup", "purchase")
_STRICT = ConfigDict(extra="forbid", frozen=True)


class AnalyticsEvent(BaseModel):
    """One tracked event."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    kind: str
    value: Decimal


class AnalyticsSource(Protocol):
    """Where a day's events come from (a tracking provider's export)."""

    async def events(self, source: str, day: dt.date) -> Sequence[AnalyticsEvent]:
        """The source's events of ``day``."""
        ...


class FakeAnalyticsSource:
    """Deterministic events, no network: 40 a day per source."""

    async def events(self, source: str, day: dt.date) -> Sequence[AnalyticsEvent]:
        found = []
        for n in range(40):
            seed = hashlib.sha256(f"{source}|{day}|{n}".encode()).digest()
            kind = KINDS[seed[0] % len(KINDS)]
            value = Decimal(seed[1] * 7 % 5000) / 100 if kind == "purchase" else Decimal(1)
            found.append(AnalyticsEvent(event_id=f"{day:%Y%m%d}-{n:03d}", kind=kind, value=value))
        return found


class SourceDayPayload(BaseModel):
    """One source, one day; scheduled runs leave ``date`` out: yesterday (UTC)."""

    model_config = _STRICT

    source: str = Field(default="web", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    date: dt.date | None = None


class DayPayload(BaseModel):
    """One day; scheduled runs leave ``date`` out: yesterday (UTC)."""

    model_config = _STRICT

    date: dt.date | None = None


def _yesterday(ctx: JobContext) -> dt.date:
    return ctx.now().date() - dt.timedelta(days=1)


class AnalyticsJobs:
    """The handlers of ``analytics-ingest`` and ``analytics-aggregate``."""

    def __init__(self, registry: Registry, source: AnalyticsSource) -> None:
        self.registry = registry
        self.source = source

    async def ingest(self, payload: SourceDayPayload, ctx: JobContext) -> dict[str, Any]:
        """Upsert the day's events; queue the day's roll-up when any changed."""
        day = payload.date or _yesterday(ctx)
        events = await self.source.events(payload.source, day)
        changed = await fetch(
            "upsert_events",
            payload.source,
            day,
            [event.event_id for event in events],
            [event.kind for event in events],
            [event.value for event in events],
        )
        rollup = None
        if changed:
            ref = await dispatch(
                self.registry,
                ctx.infra.queue,
                "analytics-aggregate",
                {"date": day},
                mode=ctx.run_mode,
            )
            rollup = ref.id
        return {
            "date": day.isoformat(),
            "events": len(events),
            "changed": len(changed),
            "aggregateJobId": rollup,
        }

    async def aggregate(self, payload: DayPayload, ctx: JobContext) -> dict[str, Any]:
        """Recompute the day's totals per event kind (an upsert: re-running changes nothing)."""
        day = payload.date or _yesterday(ctx)
        changed = await fetch("aggregate_day", day)
        rows = await fetch("daily_rollup", day)
        totals = {
            row["kind"]: {"events": row["events"], "total": str(row["total"])} for row in rows
        }
        return {"date": day.isoformat(), "changed": len(changed), "kinds": totals}


def register_analytics(registry: Registry, source: AnalyticsSource | None = None) -> AnalyticsJobs:
    """Add ``analytics-ingest`` (daily at 00:10 UTC) and ``analytics-aggregate`` (daily at
    00:40 UTC, after the ingest) to ``registry``."""
    jobs = AnalyticsJobs(registry, source or FakeAnalyticsSource())
    registry.register(
        JobDefinition(
            name="analytics-ingest",
            queue="analytics-ingest",
            payload=SourceDayPayload,
            handler=jobs.ingest,
            retry=PLAN_RETRY,
            timeout=60,
            concurrency=2,
            schedule=JobSchedule(pattern="10 0 * * *", data={"source": "web"}),
            business_keys=("source", "date"),
            date_field="date",
            description="Copy one analytics source's events of one day.",
        )
    )
    registry.register(
        JobDefinition(
            name="analytics-aggregate",
            queue="analytics-aggregate",
            payload=DayPayload,
            handler=jobs.aggregate,
            retry=PLAN_RETRY,
            timeout=60,
            concurrency=1,
            schedule=JobSchedule(pattern="40 0 * * *"),
            business_keys=("date",),
            date_field="date",
            description="Roll up one day of analytics events per kind.",
        )
    )
    return jobs
