"""Prometheus metrics of the API on a registry of its own, and the request-counting middleware."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portside.app.metrics import process_registry

__all__ = ["CONTENT_TYPE", "HttpMetrics", "MetricsMiddleware"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_STREAMING_ROUTES = frozenset({"/runs/{run_id}/events"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """The API's counters and gauges.

    Each instance has a ``CollectorRegistry`` of its own (never the global default), so two
    apps in one process, or two tests, never share counts.

    Args:
        extra: Registries exported together with this one on ``/metrics``.
        registry: Register into this one (the process's, e.g. the worker runtime's when
            ``portside dev`` runs both in one process) instead of a fresh
            ``process_registry()``.
    """

    def __init__(
        self, extra: Sequence[CollectorRegistry] = (), registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else process_registry()
        self.extra = tuple(extra)
        self.requests = Counter(
            "portside_http_requests_total",
            "HTTP requests by route template, method and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "portside_http_request_duration_seconds",
            "Time to the complete response (event streams excluded).",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.streams = Gauge(
            "portside_sse_streams_open", "Run event streams being served.", registry=self.registry
        )
        self.events_sent = Counter(
            "portside_sse_events_sent_total", "Run events sent on streams.", registry=self.registry
        )
        self.runs_started = Counter(
            "portside_runs_started_total", "Runs started (POST /runs).", registry=self.registry
        )
        self.webhooks = Counter(
            "portside_webhooks_enqueued_total",
            "Webhook deliveries queued, by event.",
            ("event",),
            registry=self.registry,
        )
        self.depth = Gauge(
            "portside_health_queue_depth",
            "Jobs not yet started per queue, at the last health check or scrape.",
            ("queue",),
            registry=self.registry,
        )
        self.failure_rate = Gauge(
            "portside_health_failure_ratio",
            "Share of recent attempts that failed, per queue (0 to 1).",
            ("queue",),
            registry=self.registry,
        )
        self.alerts = Gauge(
            "portside_health_alert",
            "1 while a health rule fires for a queue (depth, latency, failure_rate, no_workers).",
            ("queue", "rule"),
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text format of this registry and the extra ones."""
        return b"".join(generate_latest(registry) for registry in (self.registry, *self.extra))


class MetricsMiddleware:
    """Counts every request by its route template (``/jobs/{job_id}``), never the raw path."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            method = method if method in _METHODS else "OTHER"  # bounded label values
            self.metrics.requests.labels(method, route, str(status)).inc()
            if route not in _STREAMING_ROUTES:
                self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
