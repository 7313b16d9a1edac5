"""Webhooks: HMAC signatures, delivery outcomes (transient vs permanent), and the notifier
that turns completed/failed jobs into delivery jobs on the queue itself (Q8)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from portside.adapters.memory import InMemoryQueue
from portside.app.dispatching import job_options
from portside.app.http.metrics import HttpMetrics
from portside.app.http.notifier import WebhookNotifier, notification
from portside.app.http.signing import sign, verify
from portside.app.http.watcher import QueueWatcher
from portside.app.http.webhook_job import (
    WEBHOOK_JOB,
    WEBHOOK_QUEUE,
    WebhookDelivery,
    WebhookPayload,
)
from portside.app.registry import Registry
from portside.infra import Infra
from portside.ports import QueueEvent
from tests.unit.http.support import attach_worker

SECRET = "webhook-secret-0123456789"


def test_a_signature_verifies_only_for_the_same_secret_body_and_recent_time() -> None:
    body = b'{"type":"job.completed"}'
    header = sign(SECRET, body, timestamp=1_700_000_000)
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET + "x", header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)
    assert not verify(SECRET, header, body, now=1_700_001_000)  # replayed too late
    assert not verify(SECRET, "t=abc,v1=00", body)
    assert not verify(SECRET, "garbage", body)


def _event(kind: str, queue: str = "ingestion:ingest", **extra: Any) -> QueueEvent:
    return QueueEvent(kind=kind, queue=queue, job_id="j-1", name="ingest", attempt=1,
                      timestamp=1_700_000_000.0, **extra)  # fmt: skip


class _Recorder:
    def __init__(
        self,
        status: int = 200,
        error: Exception | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error = error
        self.headers = headers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return httpx.Response(self.status, headers=self.headers)


async def _deliver(infra: Infra, recorder: _Recorder, secret: str | None = SECRET) -> Any:
    queue = infra.queue
    assert isinstance(queue, InMemoryQueue)
    delivery = WebhookDelivery(lambda: secret, transport=httpx.MockTransport(recorder))
    from portside.app.http.webhook_job import webhook_definition

    definition = webhook_definition(delivery)
    attach_worker(infra, Registry([definition]), queue.clock)
    body = notification(_event("completed", result={"rows": 3}))
    await queue.enqueue(
        WEBHOOK_QUEUE,
        WEBHOOK_JOB,
        {"url": "http://hooks.test/in", "event": body},
        options=job_options(definition),
    )
    (outcome,) = await queue.drain(WEBHOOK_QUEUE)
    return outcome


async def test_a_delivery_posts_the_signed_event(fake_infra: Infra) -> None:
    recorder = _Recorder(204)
    outcome = await _deliver(fake_infra, recorder)
    assert outcome.status == "completed"
    (request,) = recorder.requests
    assert str(request.url) == "http://hooks.test/in"
    assert request.headers["x-portside-event"] == "job.completed"
    assert request.headers["x-portside-delivery"] == outcome.job_id
    assert verify(SECRET, request.headers["x-portside-signature"], request.content)
    assert json.loads(request.content)["result"] == {"rows": 3}


@pytest.mark.parametrize(
    ("recorder", "status", "kind"),
    [
        (_Recorder(503), "retrying", "transient"),
        (_Recorder(429), "retrying", "transient"),
        (_Recorder(error=httpx.ConnectError("refused")), "retrying", "transient"),
        (_Recorder(404), "failed", "permanent"),
        (_Recorder(301), "failed", "permanent"),
    ],
)
async def test_delivery_failures_are_classified(
    fake_infra: Infra, recorder: _Recorder, status: str, kind: str
) -> None:
    outcome = await _deliver(fake_infra, recorder)
    assert (outcome.status, outcome.failure_kind) == (status, kind)


async def test_q17_a_delivery_retries_after_the_receivers_retry_after(fake_infra: Infra) -> None:
    """Q17: a 503 with ``Retry-After: 90`` is retried after 90 s, not the 1 s backoff."""
    queue = fake_infra.queue
    assert isinstance(queue, InMemoryQueue)
    outcome = await _deliver(fake_infra, _Recorder(503, headers={"Retry-After": "90"}))
    assert (outcome.status, outcome.failure_kind) == ("retrying", "transient")
    assert [info.state for info in queue.jobs(WEBHOOK_QUEUE)] == ["delayed"]
    await queue.advance(89)
    assert await queue.drain(WEBHOOK_QUEUE) == []
    await queue.advance(1)
    assert [o.attempt for o in await queue.drain(WEBHOOK_QUEUE)] == [2]


async def test_a_worker_without_the_secret_fails_the_delivery_permanently(
    fake_infra: Infra,
) -> None:
    recorder = _Recorder()
    outcome = await _deliver(fake_infra, recorder, secret=None)
    assert (outcome.status, outcome.failure_kind) == ("failed", "permanent")
    assert "PORTSIDE_WEBHOOK_SECRET" in (outcome.error or "")
    assert recorder.requests == []


async def test_the_notifier_queues_one_delivery_per_url_once(fake_infra: Infra) -> None:
    queue = fake_infra.queue
    assert isinstance(queue, InMemoryQueue)
    urls = ("http://a.test/hook", "https://b.test/hook")
    notify = WebhookNotifier(queue, urls, HttpMetrics())
    await notify(_event("completed", result={"ok": True}))
    await notify(_event("completed", result={"ok": True}))  # a second API process, say
    await notify(_event("failed", error="boom", failure_kind="permanent"))
    await notify(_event("retrying", error="later"))
    await notify(_event("active"))
    await notify(_event("completed", queue=WEBHOOK_QUEUE))  # never about deliveries
    jobs = queue.jobs(WEBHOOK_QUEUE)
    assert len(jobs) == 4
    payloads = [WebhookPayload.model_validate(
        {k: v for k, v in job.data.items() if k != "_portside"}) for job in jobs]  # fmt: skip
    assert sorted((str(p.url), p.event["type"]) for p in payloads) == [
        ("http://a.test/hook", "job.completed"),
        ("http://a.test/hook", "job.failed"),
        ("https://b.test/hook", "job.completed"),
        ("https://b.test/hook", "job.failed"),
    ]
    failed = next(p.event for p in payloads if p.event["type"] == "job.failed")
    assert (failed["error"], failed["failureKind"]) == ("boom", "permanent")


async def test_q8_completed_jobs_reach_webhooks_through_the_queue(fake_infra: Infra) -> None:
    """Watcher -> notifier -> delivery job -> signed POST, all on the fakes."""
    queue = fake_infra.queue
    assert isinstance(queue, InMemoryQueue)
    recorder = _Recorder()
    delivery = WebhookDelivery(lambda: SECRET, transport=httpx.MockTransport(recorder))
    from portside.examples.dev import build_application
    from portside.examples.ingestion import InMemoryExampleStore

    application = build_application(examples=InMemoryExampleStore())
    registry = application.worker_registry(delivery)
    attach_worker(fake_infra, registry, queue.clock)
    watcher = QueueWatcher(queue, ["sync:housing"])
    watcher.add_listener(WebhookNotifier(queue, ["http://hooks.test/x"], HttpMetrics()))
    await watcher.start()
    try:
        await queue.enqueue("sync:housing", "sync-housing-abs-daily", {"date": "2024-05-01"})
        await queue.drain("sync:housing")
        await _until_queued(queue)
        (outcome,) = await queue.drain(WEBHOOK_QUEUE)
    finally:
        await watcher.stop()
    assert outcome.status == "completed"
    (request,) = recorder.requests
    sent = json.loads(request.content)
    assert (sent["type"], sent["queue"]) == ("job.completed", "sync:housing")
    assert verify(SECRET, request.headers["x-portside-signature"], request.content)


async def _until_queued(queue: InMemoryQueue) -> None:
    from portside.testing import wait_for

    await wait_for(
        lambda: bool(queue.jobs(WEBHOOK_QUEUE)),
        timeout=5,
        message="the watcher to queue a webhook delivery",
    )


async def test_q3_a_failed_delivery_is_retried_by_the_queue_after_its_backoff(
    fake_infra: Infra,
) -> None:
    answers = iter([503, 502, 200])
    recorder = _Recorder()

    def respond(request: httpx.Request) -> httpx.Response:
        recorder.requests.append(request)
        return httpx.Response(next(answers))

    queue = fake_infra.queue
    assert isinstance(queue, InMemoryQueue)
    from portside.app.http.webhook_job import webhook_definition

    definition = webhook_definition(
        WebhookDelivery(lambda: SECRET, transport=httpx.MockTransport(respond))
    )
    attach_worker(fake_infra, Registry([definition]), queue.clock)
    body = {"url": "http://hooks.test/in", "event": {"type": "job.completed"}}
    await queue.enqueue(WEBHOOK_QUEUE, WEBHOOK_JOB, body, options=job_options(definition))
    assert [o.status for o in await queue.drain(WEBHOOK_QUEUE)] == ["retrying"]
    await queue.advance(0.999)
    assert await queue.drain(WEBHOOK_QUEUE) == []
    await queue.advance(0.001)  # 1 s after the first attempt
    assert [o.status for o in await queue.drain(WEBHOOK_QUEUE)] == ["retrying"]
    await queue.advance(5)  # then 5 s
    assert [o.status for o in await queue.drain(WEBHOOK_QUEUE)] == ["completed"]
    assert len(recorder.requests) == 3
    # Each attempt signs afresh: the same body, its own timestamp.
    assert all(
        verify(SECRET, r.headers["x-portside-signature"], r.content) for r in recorder.requests
    )
