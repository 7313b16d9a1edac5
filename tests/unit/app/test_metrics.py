"""A2: the worker's metric children are looked up once per label set and count correctly."""

from __future__ import annotations

import pytest

from portside.app.metrics import WorkerMetrics


def test_a2_repeated_attempts_count_on_the_same_children() -> None:
    metrics = WorkerMetrics()
    for seconds in (0.001, 0.2, 3.0):
        metrics.attempt_finished("items", "item", seconds)
    metrics.attempt_finished("items", "item", 0.5, "transient")
    metrics.attempt_finished("items", "other", 0.5, "permanent", final=True)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("portside_jobs_processed_total", queue="items", job="item") == 3.0
    assert sample("portside_job_duration_seconds_count", queue="items", job="item") == 4.0
    assert sample("portside_job_duration_seconds_sum", queue="items", job="item") == pytest.approx(
        3.701
    )
    assert sample("portside_job_duration_seconds_count", queue="items", job="other") == 1.0
    assert (
        sample(
            "portside_jobs_failed_total",
            queue="items",
            job="other",
            classification="permanent",
            final="true",
        )
        == 1.0
    )


def test_a2_the_in_flight_gauge_of_a_queue_is_one_child() -> None:
    metrics = WorkerMetrics()
    gauge = metrics.running("items")

    assert metrics.running("items") is gauge
    gauge.inc()
    gauge.inc()
    metrics.running("items").dec()
    metrics.running("other").inc()

    assert metrics.registry.get_sample_value("portside_jobs_in_flight", {"queue": "items"}) == 1.0
    assert metrics.registry.get_sample_value("portside_jobs_in_flight", {"queue": "other"}) == 1.0
