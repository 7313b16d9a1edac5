"""E1, E2 ``weather-ingestion`` and ``alert-fanout`` on real Redis and Postgres: readings
stored idempotently, a strong gust fans an alert out to the subscribers whose preferences
want it, once each; the preferences are read through the Redis cache (60 s) and a change
invalidates them."""

from __future__ import annotations

import asyncpg
import pytest
import redis.asyncio as redis

from portside.app import dispatch
from portside.examples.plans import build_registry
from portside.examples.plans.preferences import CACHE_TTL, AlertPreferences, PreferenceStore
from portside.infra import Infra
from tests.integration.examples.plans_support import finished, runtime

pytestmark = pytest.mark.integration

HOUR = "2026-03-01T10:00:00Z"


async def test_e1_weather_ingestion_alerts_the_subscribers_who_want_it_once(
    platform_infra: Infra, db: asyncpg.Connection
) -> None:
    """E1: 12 readings stored (a rerun changes none), one alert job per station and hour, and
    one delivery per subscriber whose preferences want it (not muted, threshold met)."""
    store = PreferenceStore(platform_infra.require_cache())
    for prefs in (
        AlertPreferences(userId="u-1", stationId="storm-point", minWindKmh=50),
        AlertPreferences(userId="u-2", stationId="storm-point", muted=True),
        AlertPreferences(userId="u-3", stationId="storm-point", minWindKmh=400),
        AlertPreferences(userId="u-4", stationId="calm-bay"),
    ):
        await store.put(prefs)
    registry = build_registry()
    queue = platform_infra.queue
    async with runtime(registry, platform_infra):
        station = {"stationId": "storm-point", "hour": HOUR}
        first = await dispatch(registry, queue, "weather-ingestion", station)
        result = (await finished(platform_infra, "weather-ingestion", first.id)).result
        assert result["readings"] == 12
        assert result["changed"] == 12
        alert = await finished(platform_infra, "alert-fanout", result["alertJobId"])
        again = await dispatch(
            registry,
            queue,
            "weather-ingestion",
            {"stationId": "storm-point", "hour": HOUR},
            job_id="weather-rerun",
        )
        rerun = (await finished(platform_infra, "weather-ingestion", again.id)).result
    assert alert.state == "completed"
    assert alert.result == {"subscribers": 3, "wanted": 1, "sent": 1}
    assert rerun["changed"] == 0
    assert rerun["alertJobId"] == result["alertJobId"]  # the same alert: deduplicated
    assert await db.fetchval("SELECT count(*) FROM example_weather_observations") == 12
    deliveries = await db.fetch("SELECT alert_id, user_id FROM example_alert_deliveries")
    assert [(row["alert_id"], row["user_id"]) for row in deliveries] == [
        ("storm-point.20260301T10", "u-1")
    ]


async def test_e2_preferences_are_read_through_the_cache_and_invalidated_on_change(
    platform_infra: Infra, db: asyncpg.Connection, redis_url: str, redis_prefix: str
) -> None:
    """E2, A8: a second read is served from Redis (a change made behind the store's back is
    not seen), the cached value expires within 60 s, and a change through the store is seen
    at once."""
    store = PreferenceStore(platform_infra.require_cache())
    await store.put(AlertPreferences(userId="u-9", stationId="storm-point", minWindKmh=70))
    first = await store.get("u-9")
    assert first is not None
    assert first.minWindKmh == 70
    await db.execute("UPDATE example_alert_preferences SET min_wind_kmh = 10 WHERE user_id = 'u-9'")
    cached = await store.get("u-9")
    assert cached is not None
    assert cached.minWindKmh == 70  # served from the cache
    client = redis.from_url(redis_url)
    try:
        # platform_infra's cache keeps its keys under "<prefix>:cache".
        ttl = await client.pttl(f"{redis_prefix}:cache:alert-prefs:u-9") / 1000
    finally:
        await client.aclose()
    assert 0 < ttl <= CACHE_TTL
    await store.put(AlertPreferences(userId="u-9", stationId="storm-point", minWindKmh=30))
    fresh = await store.get("u-9")
    assert fresh is not None
    assert fresh.minWindKmh == 30
    assert await store.get("nobody") is None
