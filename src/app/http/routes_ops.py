"""``GET /livez`` and ``GET /readyz`` (OBS3), ``GET /health/queues`` (queue health against the
alert thresholds) and ``GET /metrics``."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from portside.app.http.metrics import CONTENT_TYPE
from portside.app.http.problems import responses
from portside.app.http.schemas import HealthReport, Liveness, Readiness
from portside.app.http.state import ApiState, api_state

__all__ = ["record_health", "router"]

router = APIRouter(tags=["operations"])
State = Annotated[ApiState, Depends(api_state)]
_log = logging.getLogger("portside.http")
_RULES = ("depth", "latency", "failure_rate", "no_workers")


def record_health(api: ApiState, report: HealthReport) -> None:
    """Copy a health report into the ``portside_health_*`` gauges."""
    for queue in report.queues:
        api.metrics.depth.labels(queue.queue).set(queue.depth)
        api.metrics.failure_rate.labels(queue.queue).set(queue.failure_rate)
        firing = {alert.rule for alert in queue.alerts}
        for rule in _RULES:
            api.metrics.alerts.labels(queue.queue, rule).set(1 if rule in firing else 0)


@router.get("/livez", summary="Liveness: the process answers")
async def livez() -> Liveness:
    """Always ``{"status": "alive"}`` while the process serves requests; touches no backend."""
    return Liveness()


@router.get(
    "/readyz",
    summary="Readiness: backends reachable, migrations applied, workers fetching",
    response_model=Readiness,
    responses={503: {"description": "A check failed; the body says which.", "model": Readiness}},
)
async def readyz(api: State) -> JSONResponse:
    """200 when the queue's Redis and Postgres answer, portside's migrations are applied and
    this process's workers (``portside dev``) are fetching; 503 naming the failed check
    otherwise. Answers are reused for a second, so probing every second is cheap."""
    report = await api.readiness.check()
    return JSONResponse(report.body(), status_code=200 if report.ready else 503)


@router.get(
    "/health/queues",
    summary="Queue health against the alert thresholds",
    responses=responses(503),
)
async def queue_health(api: State) -> HealthReport:
    """Per queue: depth, oldest waiting age, recent latency against its baseline, failure rate,
    workers, and the alerts that fire (depth > 100, latency > 2x baseline, failures > 5%)."""
    report = await api.health.report()
    record_health(api, report)
    return report


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(api: State) -> Response:
    """The API's metrics in the Prometheus text format; queue health gauges are refreshed on
    each scrape (a backend outage leaves them at their last values)."""
    try:
        record_health(api, await api.health.report())
    except Exception as error:
        # A scrape must still answer while Redis or Postgres is down.
        _log.warning("health refresh for /metrics failed: %s", error)
    return Response(api.metrics.exposition(), media_type=CONTENT_TYPE)
