"""``ApiState``: what every endpoint works with, kept on the application (no module globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from portside.app.admin import AdminService
from portside.app.http.health import HealthService
from portside.app.http.metrics import HttpMetrics
from portside.app.http.runs import RunService
from portside.app.http.settings import HttpSettings
from portside.app.http.sse import FrameCache, frame
from portside.app.http.watcher import QueueWatcher
from portside.app.readiness import Readiness

if TYPE_CHECKING:
    from portside.app.tracing.spans import Tracing
from portside.app.registry import Registry
from portside.infra import Infra

__all__ = ["ApiState", "api_state"]


@dataclass
class ApiState:
    """The API's collaborators.

    Attributes:
        infra: The adapters.
        registry: Jobs clients may enqueue with ``POST /jobs/{name}``.
        known: Every job the API knows: ``registry`` plus the internal ones (the run
            service's jobs, webhook deliveries).
        runs: The run service behind the run routes (None: the app has no run routes).
        settings: Configuration.
        metrics: The app's Prometheus registry.
        health: ``GET /health/queues``.
        readiness: ``GET /readyz``.
        queues: Every queue the API looks jobs up on and reports health for.
        queue_of_job: Job name -> queue, for every job in ``known``.
        admin: The operator's reads and actions (admin API, console).
        watcher: Follows queue events while the app runs (None when disabled).
        closing: Set when the server shuts down: open event streams end.
        frames: Encoded SSE frames of recent events, shared by every open event stream.
        tracing: Set when the app traces (OBS1): event streams send each event in a span.
    """

    infra: Infra
    registry: Registry
    known: Registry
    runs: RunService | None
    settings: HttpSettings
    metrics: HttpMetrics
    health: HealthService
    readiness: Readiness
    queues: tuple[str, ...]
    queue_of_job: dict[str, str]
    admin: AdminService
    watcher: QueueWatcher | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    frames: FrameCache = field(default_factory=lambda: FrameCache(frame))
    tracing: Tracing | None = None

    def require_runs(self) -> RunService:
        """The run service; only run routes call this, and they are mounted only with one."""
        if self.runs is None:
            raise RuntimeError("a run route was mounted on an app that has no run service")
        return self.runs


async def api_state(request: Request) -> ApiState:
    """FastAPI dependency: the state of the application serving ``request``.

    Async on purpose: FastAPI runs plain-function dependencies in a thread pool.
    """
    state: ApiState = request.app.state.portside
    return state
