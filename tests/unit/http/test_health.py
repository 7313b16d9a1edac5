"""A6: GET /health/queues against the alert thresholds (depth > 100, latency > 2x baseline,
failure rate > 5%), and the exact numbers of an adapter that can tell more (QueueProbe)."""

from __future__ import annotations

from typing import Any

import pytest

from portside.app.http import HealthThresholds
from portside.app.http.health import HealthService, QueueProbe, evaluate
from portside.ports import QueueCounts, QueueRunStats, WorkerStatus
from tests.unit.http.support import Api

LIMITS = HealthThresholds()


def _health(
    depth: int = 0,
    *,
    recent: QueueRunStats | None = None,
    baseline: float | None = None,
    workers: int | None = 1,
    thresholds: HealthThresholds = LIMITS,
) -> Any:
    return evaluate(
        "q",
        QueueCounts(waiting=depth),
        paused=False,
        oldest_waiting=None,
        workers=workers,
        recent=recent,
        baseline=baseline,
        thresholds=thresholds,
    )


def _rules(health: Any) -> set[str]:
    return {alert.rule for alert in health.alerts}


def test_a6_depth_alert_fires_above_100() -> None:
    assert _health(100).status == "ok"
    over = _health(101)
    assert over.status == "alert"
    assert _rules(over) == {"depth"}
    assert over.alerts[0].value == 101
    assert over.alerts[0].threshold == 100


def test_a6_latency_alert_fires_above_twice_the_baseline() -> None:
    at_limit = QueueRunStats(queue="q", finished=10, completed=10, mean_duration=2.0)
    assert _health(recent=at_limit, baseline=1.0).status == "ok"
    slow = QueueRunStats(queue="q", finished=10, completed=10, mean_duration=2.1)
    assert _rules(_health(recent=slow, baseline=1.0)) == {"latency"}
    assert _health(recent=slow, baseline=None).status == "ok"  # no baseline yet: no verdict


def test_a6_a_configured_baseline_wins_over_the_measured_one() -> None:
    slow = QueueRunStats(queue="q", finished=1, completed=1, mean_duration=0.5)
    fixed = HealthThresholds(baseline_latency={"q": 0.2})
    health = _health(recent=slow, baseline=0.5, thresholds=fixed)
    assert health.baseline_latency_seconds == 0.2
    assert _rules(health) == {"latency"}


def test_a6_failure_rate_alert_fires_above_5_percent() -> None:
    five = QueueRunStats(queue="q", finished=100, completed=95, failed=5)
    assert _health(recent=five).status == "ok"
    six = QueueRunStats(queue="q", finished=100, completed=94, failed=3, retrying=3)
    health = _health(recent=six)
    assert _rules(health) == {"failure_rate"}
    assert health.failure_rate == pytest.approx(0.06)


def test_queued_work_without_workers_alerts() -> None:
    assert _rules(_health(3, workers=0)) == {"no_workers"}
    assert _health(0, workers=0).status == "ok"
    assert _health(3, workers=None).status == "ok"  # unknown is not zero


async def test_a6_health_endpoint_reports_every_queue(api: Api) -> None:
    for _ in range(102):
        await api.queue.enqueue("sync:housing", "sync-housing-abs-daily", {})
    report = (await api.client.get("/health/queues")).json()
    queues = {item["queue"]: item for item in report["queues"]}
    assert set(queues) == {
        "agents-run:orchestrator",
        "alert-fanout",
        "analytics-aggregate",
        "analytics-ingest",
        "color-extraction",
        "ingestion:aggregate",
        "ingestion:ingest",
        "moderation-review",
        "phase1-tasks",
        "sync:energy",
        "sync:housing",
        "weather-ingestion",
        "webhooks:deliver",
    }
    housing = queues["sync:housing"]
    assert housing["depth"] == 102
    assert housing["status"] == "alert"
    assert [alert["rule"] for alert in housing["alerts"]] == ["depth"]
    assert report["status"] == "alert"
    assert queues["ingestion:ingest"]["status"] == "ok"


async def test_e2_health_endpoint_describes_the_queue_server(api: Api) -> None:
    report = (await api.client.get("/health/queues")).json()

    assert report["status"] == "ok"
    assert report["queueServer"] == {
        "backend": "in-memory",
        "status": "ok",
        "maxmemoryPolicy": "noeviction",
        "usedMemoryBytes": None,
        "maxmemoryBytes": 0,
        "memoryUsedRatio": None,
        "warnings": [],
        "unreadable": None,
    }


async def test_a6_failure_rate_and_latency_come_from_run_history(api: Api) -> None:
    bad = {"organizationId": "o", "integrationId": "revoked-1", "date": "2024-05-01"}
    good = {**bad, "integrationId": "ok-1"}
    await api.client.post("/jobs/ingest", json=bad)
    await api.client.post("/jobs/ingest", json=good)
    await api.drain()
    report = (await api.client.get("/health/queues")).json()
    ingest = next(item for item in report["queues"] if item["queue"] == "ingestion:ingest")
    assert ingest["recentAttempts"] == 2
    assert ingest["failureRate"] == 0.5
    assert "failure_rate" in {alert["rule"] for alert in ingest["alerts"]}
    assert ingest["latencySeconds"] is not None


class _ProbedQueue:
    """A queue adapter that can also count workers and waiting ages."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def oldest_waiting_age(self, queue: str) -> float | None:
        return 42.0 if queue == "sync:energy" else None

    async def worker_count(self, queue: str) -> int:
        return 0


async def test_an_adapter_that_is_a_queue_probe_gives_exact_numbers(api: Api) -> None:
    probed = _ProbedQueue(api.queue)
    assert isinstance(probed, QueueProbe)
    await api.queue.enqueue("sync:energy", "sync-energy-wholesale-5m", {})

    class _Infra:
        queue = probed
        history = None

    service = HealthService(_Infra(), ["sync:energy"], LIMITS)  # type: ignore[arg-type]
    (energy,) = (await service.report()).queues
    assert energy.oldest_waiting_seconds == 42.0
    assert energy.workers == 0
    assert [alert.rule for alert in energy.alerts] == ["no_workers"]


async def test_local_worker_statuses_count_as_workers(api: Api) -> None:
    statuses = [
        WorkerStatus(
            queue="sync:energy",
            running=True,
            paused=False,
            concurrency=2,
            active=0,
            processed=0,
            failed=0,
        )
    ]
    service = HealthService(
        api.infra, ["sync:energy", "sync:housing"], LIMITS, local_workers=lambda: statuses
    )
    energy, housing = (await service.report()).queues
    assert (energy.workers, housing.workers) == (1, 0)
