"""``create_app``: the FastAPI application on an ``Infra``, a job ``Registry`` and, when
given, a ``RunService`` (A6)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from portside import version
from portside.app.admin import AdminService
from portside.app.application import internal_jobs
from portside.app.http import routes_admin, routes_jobs, routes_ops, routes_runs
from portside.app.http.auth import API_SCHEME, require_api_token
from portside.app.http.console import install_console
from portside.app.http.health import HealthService
from portside.app.http.limits import BodyLimitMiddleware
from portside.app.http.metrics import HttpMetrics, MetricsMiddleware
from portside.app.http.notifier import WebhookNotifier
from portside.app.http.openapi import install_openapi
from portside.app.http.problems import install_error_handlers
from portside.app.http.runs import RunService
from portside.app.http.settings import HttpSettings
from portside.app.http.state import ApiState
from portside.app.http.watcher import QueueWatcher
from portside.app.logs import add_log_context
from portside.app.readiness import Readiness
from portside.app.registry import Registry
from portside.infra import Infra
from portside.ports import WorkerStatus

if TYPE_CHECKING:
    from portside.app.tracing.spans import Tracing

__all__ = ["api_state_of", "close_streams", "create_app"]

_log = logging.getLogger("portside.http")

DESCRIPTION = """\
Enqueue registered jobs and follow them; queue health and Prometheus metrics; queue, job,
run-history, dead-letter, scheduler and outbox administration behind a bearer token.{runs}

Every error answers with an `application/problem+json` body (RFC 9457)
`{{"type", "title", "status", "error": code, "detail": sentence, "fields": [...]}}`.
"""
RUNS_DESCRIPTION = """ Start runs and stream their events as Server-Sent Events (replayable
from any sequence number)."""
TAGS: list[dict[str, Any]] = [
    {"name": "jobs", "description": "Enqueue registered jobs and read their status."},
    {"name": "runs", "description": "Runs and their event streams."},
    {
        "name": "operations",
        "description": "Liveness, readiness, queue health and Prometheus metrics.",
    },
    {
        "name": "admin",
        "description": "Queues, jobs, run history, dead letters, job schedulers and the outbox "
        "(bearer token).",
    },
]


def _known_jobs(registry: Registry, runs: RunService | None) -> Registry:
    known = Registry(registry)
    for definition in internal_jobs(runs):
        if definition.name not in known:
            known.register(definition)
    return known


def _system_now() -> datetime:
    return datetime.now(UTC)


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id: its function name in camelCase (``list_queues`` ->
    ``listQueues``), so generated clients get readable method names."""
    first, *rest = route.name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _report_outbox_error(error: BaseException) -> None:
    _log.warning("outbox publisher: %s", error)


def create_app(
    infra: Infra,
    registry: Registry,
    settings: HttpSettings | None = None,
    *,
    runs: RunService | None = None,
    publish_outbox: bool = False,
    local_workers: Callable[[], Sequence[WorkerStatus]] | None = None,
    extra_metrics: Sequence[CollectorRegistry] = (),
    metrics_registry: CollectorRegistry | None = None,
    tracing: Tracing | Literal["auto"] | None = "auto",
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The HTTP API on ``infra``: what it serves is what it is given.

    Args:
        infra: Adapters (the caller owns and closes them). ``history`` enables latency and
            failure rates in health and the admin endpoints.
        registry: Jobs clients may enqueue with ``POST /jobs/{name}``. The run service's jobs
            and webhook deliveries are added internally: they are looked up and reported,
            but not enqueued by clients.
        settings: Admin token, webhooks, limits, thresholds (default: none configured).
        runs: The run service (e.g. ``portside.examples.agents.AgentRuns()``): mounts its
            ``POST /runs`` and ``GET /runs/{run_id}`` and the core's event stream
            ``GET /runs/{run_id}/events``. None (the default): the app has no run routes.
        publish_outbox: Run the outbox publisher while the app runs (safe next to other
            publishers), with the run service's outbox handler (which, for agent runs,
            re-queues runs whose enqueue failed after their commit).
        local_workers: Statuses of workers in this process, for health's worker counts and
            ``/readyz`` (which then needs them all fetching).
        extra_metrics: More registries to export on ``/metrics``.
        metrics_registry: The process's registry to add the API's metrics to (a worker
            runtime's ``metrics.registry`` in one process with both); default: a fresh one
            with the process and runtime collectors.
        tracing: ``"auto"``: decided now by ``portside.app.tracing.resolve_tracing`` (on when an
            OpenTelemetry SDK is configured); a ``Tracing``: requests are traced by
            OpenTelemetry's FastAPI instrumentation (the probes and ``/metrics`` excluded) and
            each event sent on an event stream is a span; None: nothing is traced.
        clock: Now as an aware datetime, for health windows (default: the system clock; tests
            pass the fakes' virtual clock).

    Raises:
        ValidationError: ``registry`` defines a job named like an internal one on another
            queue.
    """
    settings = settings or HttpSettings()
    tracing = _resolved(tracing)
    now = clock or _system_now
    known = _known_jobs(registry, runs)
    queues = tuple(known.queues())
    metrics = HttpMetrics(extra_metrics, registry=metrics_registry)
    watcher = QueueWatcher(infra.queue, queues) if settings.watch_queue_events else None
    if watcher is not None and settings.webhook_urls:
        watcher.add_listener(WebhookNotifier(infra.queue, settings.webhook_urls, metrics))
    state = ApiState(
        infra=infra,
        registry=registry,
        known=known,
        runs=runs,
        settings=settings,
        metrics=metrics,
        health=HealthService(
            infra,
            queues,
            settings.thresholds,
            watcher=watcher,
            local_workers=local_workers,
            clock=now,
        ),
        readiness=Readiness(infra.queue, infra.history, workers=local_workers),
        queues=queues,
        queue_of_job={definition.name: definition.queue for definition in known},
        admin=AdminService(infra, known, clock=now),
        watcher=watcher,
        tracing=tracing,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.closing = asyncio.Event()
        remove_handler: Callable[[], None] | None = None
        if publish_outbox:
            if runs is not None:
                remove_handler = infra.outbox.add_handler(runs.outbox_handler(infra.queue))
            await infra.outbox.start(on_error=_report_outbox_error)
        if watcher is not None:
            await watcher.start()
        try:
            yield
        finally:
            state.closing.set()
            if watcher is not None:
                await watcher.stop()
            if publish_outbox:
                await infra.outbox.stop()
            if remove_handler is not None:
                remove_handler()

    app = FastAPI(
        title="portside",
        version=version(),
        description=DESCRIPTION.format(runs=RUNS_DESCRIPTION if runs is not None else ""),
        lifespan=lifespan,
        # An API answers a trailing slash with 404, not a redirect clients may not follow.
        redirect_slashes=False,
        openapi_tags=[tag for tag in TAGS if runs is not None or tag["name"] != "runs"],
        generate_unique_id_function=operation_id,
    )
    app.state.portside = state
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    public = [Depends(require_api_token)]
    app.include_router(routes_jobs.router, dependencies=public)
    if runs is not None:
        app.include_router(runs.routes(), dependencies=public)
        app.include_router(routes_runs.router, dependencies=public)
    for module in (routes_ops, routes_admin):
        app.include_router(module.router)
    install_console(app)
    install_openapi(
        app,
        registry,
        queues=state.admin.queue_names,
        unused_schemes=() if settings.api_token is not None else (API_SCHEME,),
    )
    if tracing is not None:
        _instrument(app, tracing)
    return app


def _resolved(tracing: Tracing | Literal["auto"] | None) -> Tracing | None:
    if tracing != "auto":
        return tracing
    from portside.app.tracing import resolve_tracing

    return resolve_tracing()


def _instrument(app: FastAPI, tracing: Tracing) -> None:
    """OpenTelemetry's own FastAPI instrumentation: a server span per request, and the
    active span's ids in portside's JSON log lines (OBS1)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    add_log_context(tracing.log_fields)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracing.provider, excluded_urls="livez,readyz,metrics"
    )


def api_state_of(app: FastAPI) -> ApiState:
    """The ``ApiState`` of an app made by ``create_app``."""
    state: ApiState = app.state.portside
    return state


def close_streams(app: FastAPI) -> None:
    """End every open run event stream (call before stopping the server: servers wait for
    open responses to finish, and event streams would otherwise wait for their runs).

    Does nothing for an app that ``create_app`` did not make.
    """
    state = getattr(app.state, "portside", None)
    if isinstance(state, ApiState):
        state.closing.set()
