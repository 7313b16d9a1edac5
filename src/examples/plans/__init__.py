"""The plans' own queues as examples (E1, E2): one module per plan.

- ``phase1``: ``phase1-tasks``, 202 and polling over HTTP, webhooks, attempts from the
  environment.
- ``weather``: ``weather-ingestion`` and ``alert-fanout``, with the alert preferences read
  through the cache (``preferences``).
- ``colors``: ``color-extraction``, CPU-bound in a process pool, 5 at once fleet-wide.
- ``moderation``: ``moderation-review``.
- ``analytics``: ``analytics-ingest`` and ``analytics-aggregate`` on daily schedules.

``portside worker --app portside.examples.plans:registry`` runs them (their tables come with
``portside.examples.migrations``); ``portside dev`` runs them beside the other examples.
"""

from __future__ import annotations

from portside.app import Registry
from portside.examples.plans.analytics import AnalyticsSource, register_analytics
from portside.examples.plans.colors import register_colors
from portside.examples.plans.moderation import register_moderation
from portside.examples.plans.phase1 import phase1_definition
from portside.examples.plans.weather import WeatherSource, register_weather

__all__ = ["SAMPLES", "build_registry", "register_plans", "registry"]

SAMPLES: dict[str, dict[str, object]] = {
    "phase1-task": {"taskId": "task-1", "kind": "word-count", "text": "three little words"},
    "weather-ingestion": {"stationId": "storm-point"},
    "alert-fanout": {"alertId": "storm-point.demo", "stationId": "storm-point", "windKmh": 90},
    "color-extraction": {"imageId": "img-1", "width": 128, "height": 128, "seed": 7},
    "moderation-review": {"itemId": "post-1", "text": "Great photo of the storm!"},
    "analytics-ingest": {"source": "web"},
    "analytics-aggregate": {},
}
"""A payload per plan job: what ``portside dev --job NAME`` sends unless ``--data`` says."""


def register_plans(
    registry: Registry,
    *,
    weather: WeatherSource | None = None,
    analytics: AnalyticsSource | None = None,
) -> Registry:
    """Add every plan job to ``registry`` (and return it)."""
    registry.register(phase1_definition())
    register_weather(registry, weather)
    register_colors(registry)
    register_moderation(registry)
    register_analytics(registry, analytics)
    return registry


def build_registry(
    *, weather: WeatherSource | None = None, analytics: AnalyticsSource | None = None
) -> Registry:
    """A registry of the plan jobs alone."""
    return register_plans(Registry(), weather=weather, analytics=analytics)


registry = build_registry()
