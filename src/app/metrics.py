"""Prometheus metrics of a worker runtime, on a registry of its own (OBS2).

The per-attempt figures (attempts completed and failed, their durations, attempts in flight)
are plain counters that a collector turns into Prometheus samples when ``/metrics`` is read:
counting an attempt costs a few additions, not a labelled child's lock per metric.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from portside.ports import FailureKind, QueueCounts

__all__ = ["DURATION_BUCKETS", "WorkerMetrics"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_STATES = ("waiting", "active", "delayed", "completed", "failed", "paused")
_UPPER_BOUNDS = (*(float(bound) for bound in DURATION_BUCKETS), float("inf"))


class _JobStats:
    """Finished attempts of one job on one queue: plain numbers, read at scrape time."""

    __slots__ = ("buckets", "completed", "failed", "seconds")

    def __init__(self) -> None:
        self.completed = 0
        self.failed: dict[tuple[str, str], int] = {}
        self.buckets = [0] * len(_UPPER_BOUNDS)
        self.seconds = 0.0


class _AttemptCollector(Collector):
    """Turns the runtime's plain attempt counters into Prometheus metric families."""

    def __init__(
        self, stats: dict[tuple[str, str], _JobStats], in_flight: Callable[[], dict[str, int]]
    ) -> None:
        self._stats = stats
        self._in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        processed = CounterMetricFamily(
            "portside_jobs_processed", "Attempts that completed.", labels=("queue", "job")
        )
        failed = CounterMetricFamily(
            "portside_jobs_failed",
            "Attempts that failed; final=true when the job was dead-lettered.",
            labels=("queue", "job", "classification", "final"),
        )
        duration = HistogramMetricFamily(
            "portside_job_duration_seconds",
            "Wall time of one attempt, any outcome.",
            labels=("queue", "job"),
        )
        for (queue, job), stats in list(self._stats.items()):
            processed.add_metric((queue, job), stats.completed)
            for (kind, final), count in list(stats.failed.items()):
                failed.add_metric((queue, job, kind, final), count)
            cumulative, buckets = 0, []
            for bound, count in zip(_UPPER_BOUNDS, stats.buckets, strict=True):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            duration.add_metric((queue, job), buckets, stats.seconds)
        running = GaugeMetricFamily(
            "portside_jobs_in_flight", "Attempts running in this process.", labels=("queue",)
        )
        for queue, count in sorted(self._in_flight().items()):
            running.add_metric((queue,), count)
        yield processed
        yield failed
        yield duration
        yield running


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class WorkerMetrics:
    """The runtime's counters, histograms and gauges.

    Each instance owns a ``CollectorRegistry`` (never the global default), so two runtimes in
    one process, or two tests, never share counts.

    Args:
        registry: Where to register; a fresh one by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._stats: dict[tuple[str, str], _JobStats] = {}
        self._in_flight: Callable[[], dict[str, int]] = dict
        self.registry.register(_AttemptCollector(self._stats, lambda: self._in_flight()))
        self.depth = Gauge(
            "portside_queue_depth",
            "Jobs not yet started (waiting + paused + delayed), sampled.",
            ("queue",),
            registry=self.registry,
        )
        self.jobs = Gauge(
            "portside_queue_jobs",
            "Jobs per state, sampled.",
            ("queue", "state"),
            registry=self.registry,
        )
        self.history_errors = Counter(
            "portside_history_write_errors_total",
            "Run-history or dead-letter writes that failed (the job outcome is unchanged).",
            ("operation",),
            registry=self.registry,
        )
        self.startup = Gauge(
            "portside_worker_startup_seconds",
            "Seconds from process start to every consumer fetching.",
            registry=self.registry,
        )

    def count_in_flight(self, per_queue: Callable[[], dict[str, int]]) -> None:
        """Read ``portside_jobs_in_flight`` from ``per_queue()`` (attempts per queue) on scrape."""
        self._in_flight = per_queue

    def attempt_finished(
        self,
        queue: str,
        job: str,
        seconds: float,
        failure: FailureKind | None = None,
        *,
        final: bool = False,
    ) -> None:
        """Count one finished attempt."""
        stats = self._stats.get((queue, job))
        if stats is None:
            stats = self._stats[queue, job] = _JobStats()
        stats.buckets[bisect_left(_UPPER_BOUNDS, seconds)] += 1
        stats.seconds += seconds
        if failure is None:
            stats.completed += 1
        else:
            key = (failure, "true" if final else "false")
            stats.failed[key] = stats.failed.get(key, 0) + 1

    def queue_sampled(self, queue: str, counts: QueueCounts) -> None:
        """Record a ``counts()`` sample."""
        self.depth.labels(queue).set(counts.depth)
        for state in _STATES:
            self.jobs.labels(queue, state).set(getattr(counts, state))

    def exposition(self) -> bytes:
        """The text format for a ``/metrics`` endpoint."""
        return generate_latest(self.registry)
