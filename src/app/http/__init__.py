"""The HTTP API: jobs, runs with SSE replay, health, metrics, admin and webhooks (A6).

``create_app(infra, registry, settings, runs=...)`` builds the FastAPI application; the run
routes come with a ``RunService`` (``portside.app.http.runs``). Imports are lazy so that
workers, which only need the webhook delivery job (``portside.app.http.webhook_job``), never
load the web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portside.app.http.app import close_streams, create_app
    from portside.app.http.runs import RunPosition, RunService
    from portside.app.http.settings import HealthThresholds, HttpSettings

__all__ = [
    "HealthThresholds",
    "HttpSettings",
    "RunPosition",
    "RunService",
    "close_streams",
    "create_app",
]

_EXPORTS = {
    "create_app": "portside.app.http.app",
    "close_streams": "portside.app.http.app",
    "HttpSettings": "portside.app.http.settings",
    "HealthThresholds": "portside.app.http.settings",
    "RunPosition": "portside.app.http.runs",
    "RunService": "portside.app.http.runs",
}


if not TYPE_CHECKING:
    # Hidden from type checkers, so a misspelt import still fails type-checking.

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'portside.app.http' has no attribute {name!r}")
        import importlib

        return getattr(importlib.import_module(module), name)
