"""Alert preferences, read through a cache the way the personalization plan reads a user's
settings (E2, A8): a lookup is served from Redis for 60 s, and a change invalidates it.

The cache is the infra's ``CachePort``: the CLI builds it on ``$PORTSIDE_CACHE_REDIS_URL``
when that is set (a separate Redis with ``maxmemory-policy allkeys-lru``), else on the
queues' Redis under its own prefix.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from portside.app import ReadThroughCache
from portside.examples.plans.db import fetch
from portside.ports import CachePort

__all__ = ["CACHE_TTL", "AlertPreferences", "PreferenceStore"]

CACHE_TTL = 60.0


class AlertPreferences(BaseModel):
    """One user's alert settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    userId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    stationId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    minWindKmh: float = Field(default=60.0, ge=0, le=500)
    muted: bool = False


class PreferenceStore:
    """Preferences in Postgres (``example_alert_preferences``), read through ``cache``.

    Args:
        cache: The cache port (``get_infra().require_cache()`` in a job).
    """

    def __init__(self, cache: CachePort) -> None:
        self._cache = ReadThroughCache(cache, "alert-prefs", ttl=CACHE_TTL)

    async def get(self, user_id: str) -> AlertPreferences | None:
        """The user's preferences: from the cache, else from Postgres (then cached 60 s)."""
        value = await self._cache.get_or_load(user_id, lambda: self._load(user_id))
        return None if value is None else AlertPreferences.model_validate(value)

    @staticmethod
    async def _load(user_id: str) -> dict[str, object] | None:
        rows = await fetch("get_preferences", user_id)
        if not rows:
            return None
        row = rows[0]
        return AlertPreferences(
            userId=row["user_id"],
            stationId=row["station_id"],
            minWindKmh=float(row["min_wind_kmh"]),
            muted=row["muted"],
        ).model_dump(mode="json")

    async def put(self, preferences: AlertPreferences) -> bool:
        """Store a change and invalidate the cached copy; whether anything changed."""
        changed = await fetch(
            "put_preferences",
            preferences.userId,
            preferences.stationId,
            Decimal(str(preferences.minWindKmh)),
            preferences.muted,
        )
        await self._cache.invalidate(preferences.userId)
        return bool(changed)
