"""The HTTP API: jobs, agent runs with SSE replay, health, metrics, admin and webhooks (A6).

``create_app(infra, registry, settings)`` builds the FastAPI application. Imports are lazy so
that workers, which only need the webhook delivery job (``portside.app.http.webhook_job``),
never load the web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portside.app.http.app import close_streams, create_app
    from portside.app.http.settings import HealthThresholds, HttpSettings

__all__ = ["HealthThresholds", "HttpSettings", "close_streams", "create_app"]

_EXPORTS = {
    "create_app": "portside.app.http.app",
    "close_streams": "portside.app.http.app",
    "HttpSettings": "portside.app.http.settings",
    "HealthThresholds": "portside.app.http.settings",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'portside.app.http' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
