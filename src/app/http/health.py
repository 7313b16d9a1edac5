"""Queue health (A6): depth, waiting age, latency, failure rate and workers against thresholds;
the queue server's eviction policy and memory (E2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from portside.app.http.schemas import (
    HealthAlert,
    HealthReport,
    QueueHealth,
    QueueServerHealth,
    ServerWarningBody,
)
from portside.app.http.settings import HealthThresholds
from portside.app.http.watcher import QueueWatcher
from portside.app.queue_server import memory_used_ratio, server_warnings
from portside.infra import Infra
from portside.ports import QueueCounts, QueueRunStats, ServerInfo, WorkerStatus

__all__ = ["HealthService", "QueueProbe", "evaluate", "queue_server_health"]


@runtime_checkable
class QueueProbe(Protocol):
    """What a queue adapter may offer beyond ``QueuePort`` for exact health numbers.

    ``QueuePort`` has no notion of waiting ages or connected workers; an adapter with these
    two methods gets them reported exactly. Without them the API reports what it observed.
    """

    async def oldest_waiting_age(self, queue: str) -> float | None:
        """Seconds the oldest waiting job has waited, or None when none waits."""
        ...

    async def worker_count(self, queue: str) -> int:
        """Workers (in any process) consuming ``queue``."""
        ...


def _alerts(
    depth: int,
    latency: float | None,
    baseline: float | None,
    stats: QueueRunStats | None,
    workers: int | None,
    thresholds: HealthThresholds,
) -> list[HealthAlert]:
    alerts: list[HealthAlert] = []
    if depth > thresholds.max_depth:
        alerts.append(
            HealthAlert(
                rule="depth",
                value=depth,
                threshold=thresholds.max_depth,
                message=f"{depth} jobs wait, more than {thresholds.max_depth}",
            )
        )
    if latency is not None and baseline and latency > thresholds.latency_factor * baseline:
        limit = thresholds.latency_factor * baseline
        alerts.append(
            HealthAlert(
                rule="latency",
                value=round(latency, 6),
                threshold=round(limit, 6),
                message=f"attempts take {latency:.3f} s on average, over "
                f"{thresholds.latency_factor:g}x the {baseline:.3f} s baseline",
            )
        )
    rate = stats.failure_rate if stats else 0.0
    if stats and stats.finished and rate > thresholds.max_failure_rate:
        alerts.append(
            HealthAlert(
                rule="failure_rate",
                value=round(rate, 6),
                threshold=thresholds.max_failure_rate,
                message=f"{stats.failed + stats.retrying + stats.lost} of {stats.finished} recent "
                f"attempts failed ({rate:.1%}), over {thresholds.max_failure_rate:.1%}",
            )
        )
    if workers == 0 and depth > 0:
        alerts.append(
            HealthAlert(
                rule="no_workers",
                value=0,
                threshold=1,
                message=f"{depth} jobs wait and no worker consumes the queue",
            )
        )
    return alerts


def evaluate(
    queue: str,
    counts: QueueCounts,
    *,
    paused: bool,
    oldest_waiting: float | None,
    workers: int | None,
    recent: QueueRunStats | None,
    baseline: float | None,
    thresholds: HealthThresholds,
) -> QueueHealth:
    """One queue's health from its numbers (pure: the rules live here)."""
    latency = recent.mean_duration if recent else None
    chosen = thresholds.baseline_latency.get(queue, baseline)
    alerts = _alerts(counts.depth, latency, chosen, recent, workers, thresholds)
    return QueueHealth(
        queue=queue,
        status="alert" if alerts else "ok",
        depth=counts.depth,
        waiting=counts.waiting,
        active=counts.active,
        delayed=counts.delayed,
        failed=counts.failed,
        paused=paused,
        oldest_waiting_seconds=oldest_waiting,
        latency_seconds=latency,
        baseline_latency_seconds=chosen,
        failure_rate=round(recent.failure_rate, 6) if recent else 0.0,
        recent_attempts=recent.finished if recent else 0,
        workers=workers,
        alerts=alerts,
    )


def queue_server_health(info: ServerInfo) -> QueueServerHealth:
    """The queue server's part of the health report: its numbers and warnings (E2)."""
    warnings = [ServerWarningBody(**found._asdict()) for found in server_warnings(info)]
    if warnings:
        status: Literal["ok", "warning", "unknown"] = "warning"
    elif info.maxmemory_policy is None:
        status = "unknown"
    else:
        status = "ok"
    ratio = memory_used_ratio(info)
    return QueueServerHealth(
        backend=info.backend,
        status=status,
        maxmemory_policy=info.maxmemory_policy,
        used_memory_bytes=info.used_memory,
        maxmemory_bytes=info.maxmemory,
        memory_used_ratio=None if ratio is None else round(ratio, 6),
        warnings=warnings,
        unreadable=info.unreadable,
    )


class HealthService:
    """Computes ``GET /health/queues``.

    Args:
        infra: Adapters; ``infra.history`` gives latency and failure rates (zero without it).
        queues: The queues to report.
        thresholds: Alert rules.
        watcher: Observed waiting ages when the queue adapter is no ``QueueProbe``.
        local_workers: Statuses of workers in this process (``portside dev``), counted when
            the queue adapter cannot count workers itself.
        clock: Now, as an aware datetime (the history's clock).
    """

    def __init__(
        self,
        infra: Infra,
        queues: Sequence[str],
        thresholds: HealthThresholds,
        *,
        watcher: QueueWatcher | None = None,
        local_workers: Callable[[], Sequence[WorkerStatus]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._infra = infra
        self._clock = clock
        self.queues = tuple(queues)
        self.thresholds = thresholds
        self._watcher = watcher
        self._local_workers = local_workers

    async def report(self) -> HealthReport:
        """Every queue's health, and the queue server's (E2), checked now."""
        now = self._clock()
        (recent, baseline), server = await asyncio.gather(
            self._stats(now), self._infra.queue.server_info()
        )
        queues = await asyncio.gather(
            *(self._queue(name, recent.get(name), baseline.get(name)) for name in self.queues)
        )
        server_health = queue_server_health(server)
        alert = any(item.status == "alert" for item in queues) or bool(server_health.warnings)
        return HealthReport(
            status="alert" if alert else "ok",
            checked_at=now,
            window_seconds=self.thresholds.window,
            queues=list(queues),
            queue_server=server_health,
        )

    async def _stats(
        self, now: datetime
    ) -> tuple[dict[str, QueueRunStats], dict[str, float | None]]:
        history = self._infra.history
        if history is None:
            return {}, {}
        recent_rows, baseline_rows = await asyncio.gather(
            history.queue_stats(now - timedelta(seconds=self.thresholds.window)),
            history.queue_stats(now - timedelta(seconds=self.thresholds.baseline_window)),
        )
        recent = {row.queue: row for row in recent_rows}
        baseline = {row.queue: row.mean_duration for row in baseline_rows}
        return recent, baseline

    async def _queue(
        self, name: str, recent: QueueRunStats | None, baseline: float | None
    ) -> QueueHealth:
        queue = self._infra.queue
        counts, paused = await asyncio.gather(queue.counts(name), queue.is_paused(name))
        oldest: float | None = None
        workers: int | None = None
        if isinstance(queue, QueueProbe):
            oldest, workers = await asyncio.gather(
                queue.oldest_waiting_age(name), queue.worker_count(name)
            )
        else:
            if self._watcher is not None and counts.waiting + counts.paused:
                oldest = self._watcher.oldest_waiting(name)
            if self._local_workers is not None:
                workers = sum(
                    1 for status in self._local_workers() if status.queue == name and status.running
                )
        return evaluate(
            name,
            counts,
            paused=paused,
            oldest_waiting=oldest,
            workers=workers,
            recent=recent,
            baseline=baseline,
            thresholds=self.thresholds,
        )
