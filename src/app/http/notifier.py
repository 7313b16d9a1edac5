"""Turn job completions and final failures into webhook delivery jobs, one per URL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from portside.app.dispatching import job_options
from portside.app.http.metrics import HttpMetrics
from portside.app.http.webhook_job import WEBHOOK_JOB, WEBHOOK_QUEUE, webhook_definition
from portside.app.job_ids import deterministic_job_id
from portside.ports import QueueEvent, QueuePort

__all__ = ["NOTIFIED_KINDS", "WebhookNotifier", "notification"]

NOTIFIED_KINDS = {"completed": "job.completed", "failed": "job.failed"}
"""Queue event kind -> notification type. ``failed`` is final (``retrying`` is not notified)."""


def notification(event: QueueEvent) -> dict[str, Any]:
    """The JSON body a webhook receives for ``event``."""
    body: dict[str, Any] = {
        "type": NOTIFIED_KINDS[event.kind],
        "queue": event.queue,
        "jobId": event.job_id,
        "name": event.name,
        "attempt": event.attempt,
        "occurredAt": datetime.fromtimestamp(event.timestamp, UTC).isoformat(),
    }
    if event.kind == "completed":
        body["result"] = event.result
    else:
        body["error"] = event.error
        body["failureKind"] = event.failure_kind
    return body


class WebhookNotifier:
    """A ``QueueWatcher`` listener that queues a ``webhook-deliver`` job per URL.

    Delivery job ids derive from (URL, queue, job id, event, attempt), so several API
    processes watching the same queues queue each delivery once. Events of the webhook queue
    itself are ignored (no notification about notifications).

    Args:
        queue: Where delivery jobs go.
        urls: The receivers.
        metrics: Counts queued deliveries.
    """

    def __init__(self, queue: QueuePort, urls: Sequence[str], metrics: HttpMetrics) -> None:
        self._queue = queue
        self.urls = tuple(urls)
        self._metrics = metrics
        self._definition = webhook_definition()

    async def __call__(self, event: QueueEvent) -> None:
        kind = NOTIFIED_KINDS.get(event.kind)
        if kind is None or event.queue == WEBHOOK_QUEUE or not self.urls:
            return
        body = notification(event)
        for url in self.urls:
            job_id = deterministic_job_id(
                WEBHOOK_JOB,
                {
                    "url": url,
                    "queue": event.queue,
                    "jobId": event.job_id,
                    "type": kind,
                    "attempt": event.attempt,
                },
            )
            await self._queue.enqueue(
                WEBHOOK_QUEUE,
                WEBHOOK_JOB,
                {"url": url, "event": body},
                options=job_options(self._definition, job_id=job_id),
            )
            self._metrics.webhooks.labels(kind).inc()
