"""Prometheus metrics of a worker runtime, on a registry of its own (OBS2).

The per-attempt figures (attempts completed and failed, their durations, attempts in flight)
are plain counters that a collector turns into Prometheus samples when ``/metrics`` is read:
counting an attempt costs a few additions, not a labelled child's lock per metric.

Names follow Prometheus' conventions: a counter ends in ``_total`` and names what it counts,
a ratio ends in ``_ratio``, a unit is part of the name (``_seconds``, ``_bytes``). No
``_created`` series are exported.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from portside.ports import FailureKind, QueueCounts, ServerInfo

__all__ = ["DURATION_BUCKETS", "HISTORY_OPERATIONS", "WorkerMetrics", "process_registry"]

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
HISTORY_OPERATIONS = ("record_start", "record_run", "record_finish", "add_failure")
"""The run-history writes ``portside_history_write_errors_total`` counts, by ``operation``."""
_STATES = ("waiting", "active", "delayed", "completed", "failed", "paused")
_UPPER_BOUNDS = (*(float(bound) for bound in DURATION_BUCKETS), float("inf"))


def process_registry() -> CollectorRegistry:
    """A new registry with the standard ``process_*``, ``python_info`` and ``python_gc_*``
    collectors: the one registry a process exports.

    Also turns off prometheus_client's ``_created`` series for the whole process (they double
    every counter's series and no portside panel or rule reads them).
    """
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


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
            "portside_attempts_completed", "Attempts that completed.", labels=("queue", "job")
        )
        failed = CounterMetricFamily(
            "portside_attempts_failed",
            "Attempts that failed; final=true when the job was dead-lettered.",
            labels=("queue", "job", "classification", "final"),
        )
        duration = HistogramMetricFamily(
            "portside_attempt_duration_seconds",
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
            "portside_attempts_in_flight", "Attempts running in this process.", labels=("queue",)
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
        registry: Where to register; by default a fresh ``process_registry()`` (with the
            process and runtime collectors).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else process_registry()
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
        for operation in HISTORY_OPERATIONS:  # zeros from the start, for rate() and alerts
            self.history_errors.labels(operation)
        self.outbox_pending = Gauge(
            "portside_outbox_pending_events",
            "Outbox events committed but not yet published (outbox lag), sampled.",
            registry=self.registry,
        )
        self.server_memory = Gauge(
            "portside_queue_server_memory_used_bytes",
            "Memory the queue's Redis uses, sampled.",
            registry=self.registry,
        )
        self.server_maxmemory = Gauge(
            "portside_queue_server_memory_max_bytes",
            "The queue Redis's maxmemory (0: no limit), sampled.",
            registry=self.registry,
        )
        self.server_policy = Gauge(
            "portside_queue_server_maxmemory_policy_info",
            "1 for the queue Redis's maxmemory-policy (anything but noeviction can lose jobs).",
            ("policy",),
            registry=self.registry,
        )
        self.startup = Gauge(
            "portside_worker_startup_seconds",
            "Seconds from process start to every consumer fetching.",
            registry=self.registry,
        )

    def count_in_flight(self, per_queue: Callable[[], dict[str, int]]) -> None:
        """Read ``portside_attempts_in_flight`` from ``per_queue()`` (attempts per queue) on
        scrape."""
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

    def server_sampled(self, info: ServerInfo) -> None:
        """Record the queue server's memory and eviction policy (E2)."""
        if info.used_memory is not None:
            self.server_memory.set(info.used_memory)
        if info.maxmemory is not None:
            self.server_maxmemory.set(info.maxmemory)
        if info.maxmemory_policy is not None:
            self.server_policy.clear()
            self.server_policy.labels(info.maxmemory_policy).set(1)

    def outbox_sampled(self, pending: int) -> None:
        """Record how many outbox events wait to be published."""
        self.outbox_pending.set(pending)

    def exposition(self) -> bytes:
        """The text format for a ``/metrics`` endpoint."""
        return generate_latest(self.registry)
