"""OBS1 on the fakes: an enqueue is a producer span whose context travels in the job, each
attempt a consumer span continuing it (attempt, queue, job id, outcome, failure kind), outbox
appends and publishes are linked spans, log lines carry trace and span ids; with tracing off
the runtime runs the untraced code."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue
from portside.app import JobContext, Registry, WorkerRuntime, dispatch
from portside.app.attempts import AttemptRunner
from portside.app.logs import configure_logging
from portside.app.tracing import instrument, resolve_tracing
from portside.app.tracing.attempts import TracedAttemptRunner
from portside.app.tracing.spans import Tracing
from portside.infra import Infra
from portside.ports import (
    ConfigurationError,
    FlowJob,
    OutboxEvent,
    PermanentError,
    TransientError,
)
from tests.unit.app.support import Item, item_job

MakeRuntime = Callable[..., WorkerRuntime]


@pytest.fixture
def exported() -> InMemorySpanExporter:
    """Spans of this test's own tracer provider (the global provider is never set)."""
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exported: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return Tracing(provider)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """``configure_logging`` onto a buffer; back to stderr afterwards."""
    buffer = io.StringIO()
    configure_logging("INFO", buffer)
    try:
        yield buffer
    finally:
        configure_logging("INFO")


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def ok(payload: Item, ctx: JobContext) -> dict[str, Any]:
    return {"doubled": payload.value * 2}


async def flaky(payload: Item, ctx: JobContext) -> str:
    if ctx.attempt == 1:
        raise TransientError("upstream 503")
    raise PermanentError("token revoked")


async def test_obs1_the_attempt_continues_the_trace_of_the_enqueue(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    make_runtime: MakeRuntime,
    tracing: Tracing,
    exported: InMemorySpanExporter,
) -> None:
    """OBS1: send <queue> (producer) is the parent of process <queue> (consumer)."""
    registry = Registry([item_job(ok)])
    traced = instrument(app_infra, tracing)
    async with make_runtime(registry, tracing=tracing):
        ref = await dispatch(registry, traced.queue, "item", {"itemId": "i-1", "value": 2})
        await fake_queue.drain("items")
    (send,) = _by_name(exported.get_finished_spans(), "send items")
    (process,) = _by_name(exported.get_finished_spans(), "process items")
    assert send.kind is SpanKind.PRODUCER
    assert process.kind is SpanKind.CONSUMER
    assert process.context is not None
    assert send.context is not None
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "bullmq",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "items",
        "portside.job.name": "item",
        "messaging.message.id": ref.id,
    }
    attributes = dict(process.attributes or {})
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.name"] == "items"
    assert attributes["messaging.message.id"] == ref.id
    assert attributes["portside.job.attempt"] == 1
    assert attributes["portside.job.outcome"] == "completed"
    assert "portside.job.failure_kind" not in attributes


async def test_obs1_each_attempt_is_a_span_with_its_outcome_and_failure_kind(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    make_runtime: MakeRuntime,
    tracing: Tracing,
    exported: InMemorySpanExporter,
) -> None:
    """OBS1: a retried attempt and a final one: both children of the one enqueue."""
    registry = Registry([item_job(flaky)])
    traced = instrument(app_infra, tracing)
    async with make_runtime(registry, tracing=tracing):
        await dispatch(registry, traced.queue, "item", {"itemId": "i-2", "value": 1})
        await fake_queue.drain("items")
        fake_queue.clock.advance(1)
        await fake_queue.drain("items")
    (send,) = _by_name(exported.get_finished_spans(), "send items")
    attempts = sorted(
        _by_name(exported.get_finished_spans(), "process items"),
        key=lambda span: str((span.attributes or {})["portside.job.attempt"]),
    )
    assert [
        (
            (span.attributes or {})["portside.job.attempt"],
            (span.attributes or {})["portside.job.outcome"],
            (span.attributes or {})["portside.job.failure_kind"],
            (span.attributes or {})["error.type"],
        )
        for span in attempts
    ] == [
        (1, "retrying", "transient", "TransientError"),
        (2, "failed", "permanent", "PermanentError"),
    ]
    assert send.context is not None
    for span in attempts:
        assert span.parent is not None
        assert span.parent.span_id == send.context.span_id
        assert not span.status.is_ok


async def test_obs1_log_lines_of_an_attempt_carry_its_trace_and_span_ids(
    app_infra: Infra,
    fake_queue: InMemoryQueue,
    make_runtime: MakeRuntime,
    tracing: Tracing,
    exported: InMemorySpanExporter,
    log_lines: io.StringIO,
) -> None:
    """OBS1: job.completed has trace_id/span_id of its process span; lines outside a span
    have none."""
    registry = Registry([item_job(ok)])
    async with make_runtime(registry, tracing=tracing) as runtime:
        await dispatch(registry, app_infra.queue, "item", {"itemId": "i-3", "value": 1})
        await fake_queue.drain("items")
        await runtime.stop()
    (process,) = _by_name(exported.get_finished_spans(), "process items")
    assert process.context is not None
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (completed,) = [line for line in lines if line["event"] == "job.completed"]
    assert completed["trace_id"] == format(process.context.trace_id, "032x")
    assert completed["span_id"] == format(process.context.span_id, "016x")
    (stopped,) = [line for line in lines if line["event"] == "worker.stopped"]
    assert "trace_id" not in stopped


async def test_obs1_outbox_publish_links_to_the_append(
    app_infra: Infra, tracing: Tracing, exported: InMemorySpanExporter
) -> None:
    """OBS1: the append's context is stored with the event; the publish span links to it."""
    outbox = app_infra.outbox
    assert isinstance(outbox, InMemoryOutbox)
    traced = instrument(app_infra, tracing).outbox
    seen: list[OutboxEvent] = []

    async def handler(event: OutboxEvent) -> None:
        seen.append(event)

    traced.add_handler(handler)
    async with traced.transaction() as tx:
        appended = await traced.append(tx, "run-1", "run.started", {"n": 1})
    assert await outbox.drain_once() == 1
    (append,) = _by_name(exported.get_finished_spans(), "append outbox")
    (publish,) = _by_name(exported.get_finished_spans(), "publish outbox")
    assert append.kind is SpanKind.PRODUCER
    assert publish.kind is SpanKind.CONSUMER
    assert append.context is not None
    assert appended.trace_context is not None
    assert seen[0].trace_context == appended.trace_context
    assert [link.context.span_id for link in publish.links] == [append.context.span_id]
    assert (publish.attributes or {})["messaging.message.id"] == appended.id
    assert (append.attributes or {})["messaging.operation.type"] == "create"


async def test_obs1_with_tracing_off_the_runtime_runs_the_untraced_runner(
    app_infra: Infra, make_runtime: MakeRuntime, tracing: Tracing
) -> None:
    """OBS1: the code path is chosen once at start-up: off means the plain AttemptRunner and
    the plain adapters, nothing checked per job."""
    registry = Registry([item_job(ok)])
    plain = make_runtime(registry, tracing=None)
    traced = make_runtime(registry, tracing=tracing)
    history = app_infra.require_history()
    assert type(plain._attempt_runner(history, None)) is AttemptRunner  # type: ignore[arg-type]
    assert type(traced._attempt_runner(history, None)) is TracedAttemptRunner  # type: ignore[arg-type]
    assert instrument(app_infra, None) is app_infra


def test_obs1_tracing_is_chosen_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OBS1: off is off; auto without an SDK tracer provider is off; on traces; anything
    else is refused naming PORTSIDE_TRACING."""
    monkeypatch.setenv("PORTSIDE_TRACING", "off")
    assert resolve_tracing() is None
    assert resolve_tracing("auto") is None  # no SDK provider installed in the test process
    assert isinstance(resolve_tracing("on"), Tracing)
    monkeypatch.setenv("PORTSIDE_TRACING", "sometimes")
    with pytest.raises(ConfigurationError) as caught:
        resolve_tracing()
    assert caught.value.field == "PORTSIDE_TRACING"


def test_obs1_a_malformed_trace_context_starts_a_new_trace(tracing: Tracing) -> None:
    """OBS1: a job from another producer with a broken ``tm`` is run, not failed."""
    assert tracing.extract("not json") is None
    assert tracing.extract("[1, 2]") is None
    assert tracing.extract(None) is None
    assert tracing.link('{"traceparent": "garbage"}') == []


async def test_obs1_every_job_of_a_flow_continues_the_flows_trace(
    app_infra: Infra, fake_queue: InMemoryQueue, tracing: Tracing, exported: InMemorySpanExporter
) -> None:
    """OBS1: add_flow is one producer span; the parent's and the child's attempts are its
    children."""
    traced = instrument(app_infra, tracing)
    seen: list[str | None] = []

    async def handler(job: Any) -> None:
        seen.append(job.trace_context)

    for queue in ("parents", "children"):
        traced.queue.consume(queue, handler)
    await traced.queue.add_flow(
        FlowJob(queue="parents", name="p", children=(FlowJob(queue="children", name="c"),))
    )
    await fake_queue.drain()
    (send,) = _by_name(exported.get_finished_spans(), "send parents")
    assert (send.attributes or {})["messaging.batch.message_count"] == 2
    assert send.context is not None
    assert len(seen) == 2
    for carried in seen:
        extracted = tracing.extract(carried)
        assert extracted is not None
        parent = trace.get_current_span(extracted).get_span_context()
        assert parent.span_id == send.context.span_id
