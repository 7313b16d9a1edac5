"""``TracedQueue``: a queue port whose enqueues are producer spans that travel with the job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from portside.app.tracing.spans import MESSAGING_SYSTEM, Tracing
from portside.ports import FlowJob, FlowRef, JobOptions, JobRef, NewJob, QueuePort
from portside.ports.queue_types import default_options

__all__ = ["TracedQueue", "producer_attributes"]


def producer_attributes(queue: str, name: str | None, count: int = 1) -> dict[str, Any]:
    """Attributes of a ``send`` span (OpenTelemetry messaging semantic conventions)."""
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": queue,
    }
    if name is not None:
        attributes["portside.job.name"] = name
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    return attributes


def _with_context(options: JobOptions | None, trace_context: str) -> JobOptions:
    chosen = options if options is not None else default_options()
    return chosen.model_copy(update={"trace_context": trace_context})


def _flow_with_context(flow: FlowJob, trace_context: str) -> FlowJob:
    options = flow.options
    if options is None or options.trace_context is None:
        options = _with_context(options, trace_context)
    children = tuple(_flow_with_context(child, trace_context) for child in flow.children)
    return flow.model_copy(update={"options": options, "children": children})


def _flow_size(flow: FlowJob) -> int:
    return 1 + sum(_flow_size(child) for child in flow.children)


class TracedQueue:
    """Wraps a ``QueuePort``: ``enqueue``, ``enqueue_bulk`` and ``add_flow`` run in a
    ``send <queue>`` producer span and store its context in each job's ``trace_context``
    (BullMQ's ``tm``); everything else goes to the wrapped adapter unchanged.

    A job that already carries a ``trace_context`` keeps it.
    """

    def __init__(self, inner: QueuePort, tracing: Tracing) -> None:
        self._inner = inner
        self._tracing = tracing

    def port(self) -> QueuePort:
        """This wrapper, typed as the port it implements (everything but the enqueues is
        delegated through ``__getattr__``)."""
        return cast(QueuePort, self)

    @property
    def inner(self) -> QueuePort:
        """The wrapped adapter."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def enqueue(
        self,
        queue: str,
        name: str,
        data: Mapping[str, Any] | BaseModel,
        *,
        options: JobOptions | None = None,
    ) -> JobRef:
        """Add a job inside a producer span whose context the job carries."""
        if options is not None and options.trace_context is not None:
            return await self._inner.enqueue(queue, name, data, options=options)
        with self._tracing.start(
            f"send {queue}", SpanKind.PRODUCER, producer_attributes(queue, name)
        ) as span:
            traced = _with_context(options, self._tracing.inject())
            ref = await self._inner.enqueue(queue, name, data, options=traced)
            span.set_attribute("messaging.message.id", ref.id)
            return ref

    async def enqueue_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[JobRef]:
        """Add jobs in one producer span; each job carries its context."""
        names = {job.name for job in jobs if isinstance(job, NewJob)}
        name = next(iter(names)) if len(names) == 1 else None
        with self._tracing.start(
            f"send {queue}", SpanKind.PRODUCER, producer_attributes(queue, name, len(jobs))
        ):
            trace_context = self._tracing.inject()
            traced = [
                job.model_copy(update={"options": _with_context(job.options, trace_context)})
                if isinstance(job, NewJob)
                and (job.options is None or job.options.trace_context is None)
                else job
                for job in jobs
            ]
            return await self._inner.enqueue_bulk(queue, traced)

    async def add_flow(self, flow: FlowJob) -> FlowRef:
        """Add a flow in one producer span (named after the top job's queue); every job of
        the flow carries its context."""
        checked: object = flow
        if not isinstance(checked, FlowJob):
            return await self._inner.add_flow(flow)  # the adapter says what is wrong
        attributes = producer_attributes(flow.queue, flow.name, _flow_size(flow))
        with self._tracing.start(f"send {flow.queue}", SpanKind.PRODUCER, attributes):
            traced = _flow_with_context(flow, self._tracing.inject())
            return await self._inner.add_flow(traced)
