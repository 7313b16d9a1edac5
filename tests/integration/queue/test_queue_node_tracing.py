"""OBS1: one trace across Node BullMQ (with bullmq-otel) and portside, both ways.

The trace context travels in the job's opts as ``tm`` (BullMQ's ``telemetry.metadata``).
Both sides export to a list in memory; the test compares trace ids and parent span ids.
Needs ``node`` and ``npm``; the pinned npm packages (``NODE_OTEL_PINS``) are installed once into
``~/.cache/portside/node-bullmq-otel`` (``$PORTSIDE_NODE_BULLMQ_OTEL``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from pydantic import BaseModel, ConfigDict

from portside.app import JobContext, JobDefinition, Registry
from portside.app.metrics import WorkerMetrics
from portside.app.tracing import instrument
from portside.app.tracing.attempts import TracedAttemptRunner
from portside.app.tracing.spans import Tracing
from portside.infra import Infra

pytestmark = [pytest.mark.integration, pytest.mark.node]

_CONSUMER = 4  # OpenTelemetry JS SpanKind.CONSUMER
_PRODUCER = 3  # OpenTelemetry JS SpanKind.PRODUCER


class FromNode(BaseModel):
    model_config = ConfigDict(extra="allow")


class Recorded(SpanExporter):
    """Keeps every finished span in a list (what the SDK's own memory exporter does)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def get_finished_spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.spans)


@pytest.fixture
def exported() -> Recorded:
    return Recorded()


@pytest.fixture
def tracing(exported: Recorded) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return Tracing(provider)


def _only(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


async def test_obs1_a_portside_worker_continues_a_trace_started_in_node(
    infra: Infra,
    node_bullmq_otel: Any,
    redis_url: str,
    redis_prefix: str,
    tracing: Tracing,
    exported: Recorded,
    drain_queue: Any,
) -> None:
    """OBS1: Node ``Queue.add`` with bullmq-otel writes ``tm``; the portside attempt's
    ``process`` span has the Node producer span as parent, in the same trace."""
    added = await node_bullmq_otel.run(
        "otel_produce.cjs", redis_url, f"{redis_prefix}:otel", "node2py"
    )
    (producer,) = [span for span in added["spans"] if span["kind"] == _PRODUCER]
    assert json.loads(added["opts"]["tm"])["traceparent"].split("-")[1] == producer["traceId"]

    async def handle(payload: FromNode, ctx: JobContext) -> str:
        return "seen by portside"

    registry = Registry(
        [JobDefinition(name="traced", queue="otel:node2py", payload=FromNode, handler=handle)]
    )
    runner = TracedAttemptRunner(
        registry,
        infra,
        infra.require_history(),
        WorkerMetrics(),
        lambda: datetime.now(UTC),
        tracing=tracing,
    )
    handle_ = infra.queue.consume("otel:node2py", runner, classify=runner.classify)
    await handle_.start()
    try:
        await drain_queue("otel:node2py")
    finally:
        await handle_.close(5)
    process = _only(exported.get_finished_spans(), "process otel:node2py")
    assert process.context is not None
    assert format(process.context.trace_id, "032x") == producer["traceId"]
    assert process.parent is not None
    assert format(process.parent.span_id, "016x") == producer["spanId"]
    assert process.parent.is_remote
    assert (process.attributes or {})["portside.job.outcome"] == "completed"
    assert (process.attributes or {})["messaging.message.id"] == added["id"]


async def test_obs1_a_node_worker_continues_a_trace_started_in_portside(
    infra: Infra,
    node_bullmq_otel: Any,
    redis_url: str,
    redis_prefix: str,
    tracing: Tracing,
    exported: Recorded,
) -> None:
    """OBS1: a portside enqueue's ``send`` span is the parent of Node's ``process`` span
    (bullmq-otel reads ``tm``), in the same trace."""
    traced = instrument(infra, tracing)
    ref = await traced.queue.enqueue("otel:py2node", "traced", {"from": "portside"})
    seen = await node_bullmq_otel.run(
        "otel_consume.cjs", redis_url, f"{redis_prefix}:otel", "py2node", "1"
    )
    assert seen["completed"] == [ref.id]
    send = _only(exported.get_finished_spans(), "send otel:py2node")
    assert send.context is not None
    consumers = [span for span in seen["spans"] if span["kind"] == _CONSUMER]
    assert len(consumers) == 1, seen["spans"]
    (consumer,) = consumers
    assert consumer["name"] == "process py2node"
    assert consumer["traceId"] == format(send.context.trace_id, "032x")
    assert consumer["parentSpanId"] == format(send.context.span_id, "016x")
    info = await infra.queue.get_job("otel:py2node", ref.id)
    assert info is not None
    assert info.state == "completed"
