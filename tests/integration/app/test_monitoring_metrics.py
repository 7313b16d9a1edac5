"""OBS2: every metric the shipped dashboard and alert rules read exists in /metrics after a
short workload on real Redis and Postgres."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel

from portside.app import JobContext, JobDefinition, Registry, WorkerRuntime, dispatch
from portside.app.http import create_app
from portside.infra import Infra
from portside.ports import PermanentError
from tests.monitoring_files import dashboard_expressions, metric_names, rule_expressions

pytestmark = pytest.mark.integration


class Work(BaseModel):
    fail: bool = False


async def work(payload: Work, ctx: JobContext) -> str:
    if payload.fail:
        raise PermanentError("refused")
    return "done"


def _registry() -> Registry:
    return Registry([JobDefinition(name="work", queue="monitoring:q", payload=Work, handler=work)])


async def test_every_metric_of_the_dashboard_and_rules_is_exported(
    platform_infra: Infra, drain_queue: object
) -> None:
    """OBS2: a worker and the API in one process (one registry), three jobs (one dead
    letter), one sample: the scrape names every series the panels and rules use."""
    registry = _registry()
    runtime = WorkerRuntime(registry, platform_infra, sample_interval=None)
    async with runtime:
        for fail in (False, False, True):
            await dispatch(registry, platform_infra.queue, "work", {"fail": fail})
        await drain_queue("monitoring:q")  # type: ignore[operator]
        await runtime.sample()
        app = create_app(platform_infra, registry, metrics_registry=runtime.metrics.registry)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/metrics")
    assert response.status_code == 200
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in response.text.splitlines()
        if line and not line.startswith("#")
    }
    used = metric_names(dashboard_expressions()) | metric_names(rule_expressions())
    assert "portside_attempt_duration_seconds_bucket" in used
    assert not used - exported, f"used but not exported: {sorted(used - exported)}"
    dead = [
        line
        for line in response.text.splitlines()
        if line.startswith("portside_attempts_failed_total{") and 'final="true"' in line
    ]
    assert len(dead) == 1
    assert dead[0].endswith(" 1.0")
