"""E1 ``color-extraction``, ``moderation-review``, ``analytics-ingest`` and
``analytics-aggregate`` on real Redis and Postgres, and every daily schedule of the examples
as BullMQ job schedulers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
import pytest

from portside.app import dispatch, sync_schedules
from portside.examples.dev import build_application
from portside.examples.plans import build_registry
from portside.examples.plans.analytics import FakeAnalyticsSource
from portside.infra import Infra
from tests.integration.examples.plans_support import finished, runtime

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 2, 14)


async def test_e1_color_extraction_runs_in_a_pool_child_with_its_fleet_cap(
    platform_infra: Infra,
) -> None:
    """E1, Q13, Q14: the worker sets the queue-wide cap of 5; the extraction runs in a pool
    child and returns the image's five dominant colors."""
    registry = build_registry()
    queue = platform_infra.queue
    async with runtime(registry, platform_infra):
        assert await queue.queue_concurrency("color-extraction") == 5
        ref = await dispatch(
            registry, queue, "color-extraction", {"imageId": "img-1", "width": 64, "height": 48}
        )
        info = await finished(platform_infra, "color-extraction", ref.id)
    assert info.state == "completed"
    assert info.result["pixels"] == 64 * 48
    assert len(info.result["colors"]) == 5
    assert sum(color["share"] for color in info.result["colors"]) <= 1
    assert info.progress == 50


async def test_e1_moderation_review_stores_one_decision_per_item(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """E1: approve, reject and escalate decisions upserted; the same review again changes
    nothing."""
    registry = build_registry()
    queue = platform_infra.queue
    items: dict[str, dict[str, Any]] = {
        "post-1": {"itemId": "post-1", "text": "Lovely sunset over the bay"},
        "post-2": {"itemId": "post-2", "text": "Cheap pills, total SCAM"},
        "post-3": {"itemId": "post-3", "text": "hello", "reports": 7},
    }
    async with runtime(registry, platform_infra):
        refs = [
            await dispatch(registry, queue, "moderation-review", item) for item in items.values()
        ]
        for ref in refs:
            await finished(platform_infra, "moderation-review", ref.id)
        again = await dispatch(registry, queue, "moderation-review", items["post-2"])
        repeat = await finished(platform_infra, "moderation-review", again.id)
    rows = await db.fetch("SELECT item_id, decision FROM example_moderation_decisions ORDER BY 1")
    assert [(row["item_id"], row["decision"]) for row in rows] == [
        ("post-1", "approve"),
        ("post-2", "reject"),
        ("post-3", "escalate"),
    ]
    assert repeat.result["changed"] is False


async def test_e1_analytics_ingest_and_aggregate_are_idempotent(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """E1: a day's events are upserted and rolled up per kind; ingesting the day again changes
    no row and queues no roll-up; a run without a date (as the schedule sends) takes
    yesterday."""
    registry = build_registry()
    queue = platform_infra.queue
    async with runtime(registry, platform_infra):
        first = await dispatch(
            registry, queue, "analytics-ingest", {"source": "web", "date": DAY.isoformat()}
        )
        ingested = (await finished(platform_infra, "analytics-ingest", first.id)).result
        rollup = await finished(platform_infra, "analytics-aggregate", ingested["aggregateJobId"])
        again = await dispatch(
            registry,
            queue,
            "analytics-ingest",
            {"source": "web", "date": DAY.isoformat()},
            job_id="ingest-again",
        )
        repeat = (await finished(platform_infra, "analytics-ingest", again.id)).result
        scheduled = await dispatch(registry, queue, "analytics-aggregate", {}, mode="scheduled")
        yesterday = (await finished(platform_infra, "analytics-aggregate", scheduled.id)).result
    assert (ingested["events"], ingested["changed"]) == (40, 40)
    assert (repeat["changed"], repeat["aggregateJobId"]) == (0, None)
    events = await FakeAnalyticsSource().events("web", DAY)
    rows = await db.fetch(
        "SELECT kind, events, total FROM example_analytics_daily WHERE day = $1", DAY
    )
    assert sum(row["events"] for row in rows) == 40
    assert sum(row["total"] for row in rows) == sum(event.value for event in events)
    assert set(rollup.result["kinds"]) == {row["kind"] for row in rows}
    today = dt.datetime.now(dt.UTC).date()
    assert yesterday["date"] == (today - dt.timedelta(days=1)).isoformat()


async def test_e1_every_daily_schedule_is_a_job_scheduler(platform_infra: Infra) -> None:
    """E1, A7, Q11: the examples' application bootstraps the daily ingestion and aggregation
    and the analytics ingest and aggregate as BullMQ job schedulers; a second sync changes
    nothing."""
    registry = build_application().worker_registry()
    queue = platform_infra.queue
    first = await sync_schedules(registry, queue)
    second = await sync_schedules(registry, queue)
    patterns = {}
    for name in (
        "ingestion:ingest",
        "ingestion:aggregate",
        "analytics-ingest",
        "analytics-aggregate",
    ):
        (schedule,) = await queue.list_schedules(name)
        patterns[schedule.scheduler_id] = schedule.pattern
    assert patterns == {
        "ingest": "0 2 * * *",
        "aggregate": "30 3 * * *",
        "analytics-ingest": "10 0 * * *",
        "analytics-aggregate": "40 0 * * *",
    }
    assert len(first.created) == 7
    assert second.created == second.updated == []
