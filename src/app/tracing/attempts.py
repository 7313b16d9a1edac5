"""``TracedAttemptRunner``: each attempt is a consumer span, continuing the producer's trace."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.trace import SpanKind

from portside.app.attempts import KIND_ATTR, AttemptRunner
from portside.app.tracing.spans import MESSAGING_SYSTEM, Tracing, record_failure
from portside.ports import Job

__all__ = ["TracedAttemptRunner", "consumer_attributes"]


def consumer_attributes(job: Job) -> dict[str, Any]:
    """Attributes of a ``process`` span (OpenTelemetry messaging semantic conventions, with
    portside's own under ``portside.job``)."""
    return {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": job.id,
        "portside.job.name": job.name,
        "portside.job.attempt": job.attempt,
        "portside.job.max_attempts": job.max_attempts,
    }


class TracedAttemptRunner(AttemptRunner):
    """``AttemptRunner`` in a ``process <queue>`` span per attempt.

    The span's parent is the context the job carries (its ``trace_context``: a portside or a
    Node BullMQ producer with bullmq-otel), so the attempt continues the producer's trace; a
    job without one starts a trace. The span ends with ``portside.job.outcome``
    (``completed``, ``retrying``, ``failed`` or ``interrupted``) and, on failure,
    ``portside.job.failure_kind`` and ``error.type``. Log lines of the attempt carry its
    ``trace_id`` and ``span_id``.

    Args:
        tracing: The tracer; the other arguments are ``AttemptRunner``'s.
    """

    def __init__(self, *args: Any, tracing: Tracing, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracing = tracing

    async def __call__(self, job: Job) -> Any:
        parent = self._tracing.extract(getattr(job, "trace_context", None))
        with self._tracing.tracer.start_as_current_span(
            f"process {job.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=consumer_attributes(job),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await super().__call__(job)
            except asyncio.CancelledError:
                span.set_attribute("portside.job.outcome", "interrupted")
                raise
            except Exception as error:
                kind = getattr(error, KIND_ATTR, None) or self.classify(error)
                final = kind == "permanent" or job.attempt >= job.max_attempts
                span.set_attribute("portside.job.outcome", "failed" if final else "retrying")
                span.set_attribute("portside.job.failure_kind", kind)
                record_failure(span, error)
                raise
            span.set_attribute("portside.job.outcome", "completed")
            return result
