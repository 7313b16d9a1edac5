"""OBS1 in the HTTP API: requests are server spans (OpenTelemetry's FastAPI instrumentation),
and each event sent on a run's event stream is a span linked to the append that wrote it."""

from __future__ import annotations

import httpx
from httpx_sse import aconnect_sse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from portside.adapters.memory import InMemoryQueue
from portside.app.http import HttpSettings, create_app
from portside.app.tracing import instrument
from portside.app.tracing.spans import Tracing
from portside.examples.agents import InMemoryAgentRunStore
from portside.examples.dev import build_application
from portside.examples.ingestion import InMemoryExampleStore
from portside.infra import Infra
from tests.unit.http.support import TOKEN, attach_worker


async def test_obs1_requests_and_sse_deliveries_are_spans(fake_infra: Infra) -> None:
    """OBS1: POST /runs is a server span and its enqueue a child producer span; every SSE
    frame of the run is a ``send sse`` span linked to its ``append outbox`` span; the
    probes are not traced."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    queue = fake_infra.queue
    assert isinstance(queue, InMemoryQueue)
    traced = instrument(fake_infra, tracing)
    application = build_application(
        runs=InMemoryAgentRunStore(queue.clock.datetime), examples=InMemoryExampleStore()
    )
    app = create_app(
        traced,
        application.registry,
        HttpSettings(admin_token=TOKEN, watch_queue_events=False),
        runs=application.runs,
        clock=queue.clock.datetime,
        tracing=tracing,
    )
    attach_worker(traced, application.worker_registry(), queue.clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portside.test") as client:
        started = await client.post("/runs", json={"input": "x", "steps": 2})
        assert started.status_code == 202
        run_id = started.json()["runId"]
        await queue.drain()
        assert (await client.get("/livez")).status_code == 200
        async with aconnect_sse(client, "GET", f"/runs/{run_id}/events") as source:
            frames = [sse async for sse in source.aiter_sse() if sse.data]
    spans = exporter.get_finished_spans()
    servers = [span for span in spans if span.kind is SpanKind.SERVER]
    assert any(span.name == "POST /runs" for span in servers), [s.name for s in servers]
    assert not any("livez" in span.name for span in servers)
    (post,) = [span for span in servers if span.name == "POST /runs"]
    assert post.context is not None
    sends = [span for span in spans if span.name.startswith("send ") and span.name != "send sse"]
    assert any(span.context is not None and span.context.trace_id == post.context.trace_id
               for span in sends)  # fmt: skip
    appends = {
        span.context.span_id: span
        for span in spans
        if span.name == "append outbox" and span.context is not None
    }
    deliveries = [span for span in spans if span.name == "send sse"]
    assert len(deliveries) == len(frames) == 7
    for delivery in deliveries:
        assert delivery.kind is SpanKind.PRODUCER
        (link,) = delivery.links
        assert link.context.span_id in appends
