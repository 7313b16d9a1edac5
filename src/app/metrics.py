"""Prometheus metrics of a worker runtime, on a registry of its own (OBS2)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from portside.ports import FailureKind, QueueCounts

__all__ = ["DURATION_BUCKETS", "WorkerMetrics"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_STATES = ("waiting", "active", "delayed", "completed", "failed", "paused")


class WorkerMetrics:
    """The runtime's counters, histograms and gauges.

    Each instance owns a ``CollectorRegistry`` (never the global default), so two runtimes in
    one process, or two tests, never share counts. The per-attempt children (one per queue,
    or per queue and job) are looked up once and kept: ``labels()`` takes a lock and
    validates its arguments on every call.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.processed = Counter(
            "portside_jobs_processed_total",
            "Attempts that completed.",
            ("queue", "job"),
            registry=self.registry,
        )
        self.failed = Counter(
            "portside_jobs_failed_total",
            "Attempts that failed; final=true when the job was dead-lettered.",
            ("queue", "job", "classification", "final"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "portside_job_duration_seconds",
            "Wall time of one attempt, any outcome.",
            ("queue", "job"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "portside_jobs_in_flight",
            "Attempts running in this process.",
            ("queue",),
            registry=self.registry,
        )
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
        self._running: dict[str, Gauge] = {}
        self._finished: dict[tuple[str, str], tuple[Histogram, Counter]] = {}

    def running(self, queue: str) -> Gauge:
        """The ``in_flight`` gauge of ``queue`` (``inc()`` when an attempt starts, ``dec()``)."""
        gauge = self._running.get(queue)
        if gauge is None:
            gauge = self._running[queue] = self.in_flight.labels(queue)
        return gauge

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
        children = self._finished.get((queue, job))
        if children is None:
            children = (self.duration.labels(queue, job), self.processed.labels(queue, job))
            self._finished[queue, job] = children
        duration, processed = children
        duration.observe(seconds)
        if failure is None:
            processed.inc()
        else:
            self.failed.labels(queue, job, failure, "true" if final else "false").inc()

    def queue_sampled(self, queue: str, counts: QueueCounts) -> None:
        """Record a ``counts()`` sample."""
        self.depth.labels(queue).set(counts.depth)
        for state in _STATES:
            self.jobs.labels(queue, state).set(getattr(counts, state))

    def exposition(self) -> bytes:
        """The text format for a ``/metrics`` endpoint."""
        return generate_latest(self.registry)
