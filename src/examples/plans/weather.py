"""The weather plan: ``weather-ingestion`` (60 jobs a minute, 30 s, 10 per worker) stores a
station's observations and queues an ``alert-fanout`` (20 per worker, 10 s) when the wind is
strong; the fan-out reads each subscriber's preferences through the cache (E2)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from portside.app import JobContext, JobDefinition, Registry, dispatch
from portside.examples.plans.db import fetch
from portside.examples.plans.preferences import PreferenceStore
from portside.examples.plans.retry import PLAN_RETRY
from portside.ports import RateLimit

__all__ = [
    "STRONG_WIND_KMH",
    "AlertPayload",
    "FakeWeatherSource",
    "Observation",
    "StationPayload",
    "WeatherJobs",
    "WeatherSource",
]

STRONG_WIND_KMH = 60.0
"""An hour with a gust at least this strong raises an alert for the station."""
_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_STRICT = ConfigDict(extra="forbid", frozen=True)


class Observation(BaseModel):
    """One 5-minute reading of a station."""

    model_config = ConfigDict(frozen=True)

    observed_at: datetime
    temp_c: Decimal
    wind_kmh: Decimal


class WeatherSource(Protocol):
    """Where observations come from (a weather provider's API)."""

    async def observations(self, station_id: str, hour: datetime) -> Sequence[Observation]:
        """The station's readings in the hour starting at ``hour``."""
        ...


class FakeWeatherSource:
    """Deterministic readings, no network: stations named ``storm-*`` have gale-force gusts."""

    async def observations(self, station_id: str, hour: datetime) -> Sequence[Observation]:
        readings = []
        for step in range(12):
            at = hour + timedelta(minutes=5 * step)
            seed = hashlib.sha256(f"{station_id}|{at.isoformat()}".encode()).digest()
            wind = seed[0] % 40 + (70 if station_id.startswith("storm") and step == 6 else 0)
            temp = Decimal(seed[1] % 300 - 50) / 10
            readings.append(Observation(observed_at=at, temp_c=temp, wind_kmh=Decimal(wind)))
        return readings


class StationPayload(BaseModel):
    """One station, one hour; scheduled or manual runs leave ``hour`` out: the last full hour."""

    model_config = _STRICT

    stationId: str = Field(pattern=_ID)
    hour: datetime | None = None


class AlertPayload(BaseModel):
    """A strong-wind alert of one station and hour."""

    model_config = _STRICT

    alertId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:.-]{0,127}$")
    stationId: str = Field(pattern=_ID)
    windKmh: float = Field(ge=0)


def _last_full_hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


class WeatherJobs:
    """The handlers of ``weather-ingestion`` and ``alert-fanout``."""

    def __init__(self, registry: Registry, source: WeatherSource) -> None:
        self.registry = registry
        self.source = source

    async def ingest(self, payload: StationPayload, ctx: JobContext) -> dict[str, Any]:
        """Store the hour's readings (an idempotent upsert); alert on a strong gust."""
        hour = payload.hour or _last_full_hour(ctx.now())
        readings = await self.source.observations(payload.stationId, hour)
        changed = await fetch(
            "upsert_observations",
            payload.stationId,
            [reading.observed_at for reading in readings],
            [reading.temp_c for reading in readings],
            [reading.wind_kmh for reading in readings],
        )
        gust = max((float(reading.wind_kmh) for reading in readings), default=0.0)
        alert = None
        if gust >= STRONG_WIND_KMH:
            ref = await dispatch(
                self.registry,
                ctx.infra.queue,
                "alert-fanout",
                {
                    "alertId": f"{payload.stationId}.{hour:%Y%m%dT%H}",
                    "stationId": payload.stationId,
                    "windKmh": gust,
                },
                mode=ctx.run_mode,
                deterministic_id=True,  # one alert job per station and hour
            )
            alert = ref.id
        return {"readings": len(readings), "changed": len(changed), "alertJobId": alert}

    async def fan_out(self, payload: AlertPayload, ctx: JobContext) -> dict[str, Any]:
        """Notify the station's subscribers whose preferences want this alert, once each."""
        preferences = PreferenceStore(ctx.infra.require_cache())
        rows = await fetch("station_subscribers", payload.stationId)
        subscribers = [row["user_id"] for row in rows]
        wanted = []
        for user_id in subscribers:
            found = await preferences.get(user_id)
            if found is not None and not found.muted and payload.windKmh >= found.minWindKmh:
                wanted.append(user_id)
        sent = await fetch("record_deliveries", payload.alertId, wanted)
        return {"subscribers": len(subscribers), "wanted": len(wanted), "sent": len(sent)}


def register_weather(registry: Registry, source: WeatherSource | None = None) -> WeatherJobs:
    """Add ``weather-ingestion`` and ``alert-fanout`` to ``registry``."""
    jobs = WeatherJobs(registry, source or FakeWeatherSource())
    registry.register(
        JobDefinition(
            name="weather-ingestion",
            queue="weather-ingestion",
            payload=StationPayload,
            handler=jobs.ingest,
            retry=PLAN_RETRY,
            timeout=30,
            concurrency=10,
            rate_limit=RateLimit(max=60, per=60),
            business_keys=("stationId",),
            id_keys=("stationId", "hour"),
            description="Store one weather station's readings for an hour; alert on strong wind.",
        )
    )
    registry.register(
        JobDefinition(
            name="alert-fanout",
            queue="alert-fanout",
            payload=AlertPayload,
            handler=jobs.fan_out,
            retry=PLAN_RETRY,
            timeout=10,
            concurrency=20,
            business_keys=("alertId", "stationId"),
            id_keys=("alertId",),
            description="Send a strong-wind alert to the subscribers who want it, once each.",
        )
    )
    return jobs
