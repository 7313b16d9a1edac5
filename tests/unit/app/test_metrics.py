"""OBS2: the worker's attempt metrics count correctly and cost nothing per attempt."""

from __future__ import annotations

import pytest

from portside.app.metrics import WorkerMetrics


def test_obs2_repeated_attempts_count_per_queue_and_job() -> None:
    metrics = WorkerMetrics()
    for seconds in (0.001, 0.2, 3.0):
        metrics.attempt_finished("items", "item", seconds)
    metrics.attempt_finished("items", "item", 0.5, "transient")
    metrics.attempt_finished("items", "other", 0.5, "permanent", final=True)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("portside_attempts_completed_total", queue="items", job="item") == 3.0
    assert sample("portside_attempt_duration_seconds_count", queue="items", job="item") == 4.0
    total = sample("portside_attempt_duration_seconds_sum", queue="items", job="item")
    assert total == pytest.approx(3.701)
    assert sample("portside_attempt_duration_seconds_count", queue="items", job="other") == 1.0
    assert (
        sample(
            "portside_attempts_failed_total",
            queue="items",
            job="other",
            classification="permanent",
            final="true",
        )
        == 1.0
    )


def test_obs2_attempts_in_flight_are_read_when_metrics_are_scraped() -> None:
    """OBS2: the in-flight gauge costs nothing per attempt: it is read on scrape."""
    metrics = WorkerMetrics()
    in_flight = {"items": 2, "other": 0}
    metrics.count_in_flight(lambda: dict(in_flight))

    def sample(queue: str) -> float | None:
        return metrics.registry.get_sample_value("portside_attempts_in_flight", {"queue": queue})

    assert (sample("items"), sample("other")) == (2.0, 0.0)
    in_flight["items"] = 1
    assert sample("items") == 1.0


def test_obs2_durations_fall_into_prometheus_buckets() -> None:
    """OBS2: a duration equal to a bucket's bound counts in that bucket (le), one above it
    in the next; +Inf counts them all."""
    metrics = WorkerMetrics()
    for seconds in (0.005, 0.0051, 400.0):
        metrics.attempt_finished("items", "item", seconds)

    def bucket(le: str) -> float | None:
        return metrics.registry.get_sample_value(
            "portside_attempt_duration_seconds_bucket", {"queue": "items", "job": "item", "le": le}
        )

    assert (bucket("0.005"), bucket("0.01"), bucket("300.0"), bucket("+Inf")) == (1, 2, 2, 3)
