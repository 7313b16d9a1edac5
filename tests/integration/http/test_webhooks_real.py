"""Webhooks end to end: a job completes or fails in a real worker process, the API (watching
the queue's events) queues a delivery job, the worker POSTs it signed to a real receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request

from portside.app.http import HttpSettings, create_app
from portside.app.http.server import ApiServer
from portside.app.http.signing import verify
from portside.examples.ingestion import build_registry
from portside.infra import Infra
from portside.testing import wait_for
from tests.integration.http.support import TOKEN, WEBHOOK_SECRET, RunningApi, WorkerProcess

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free port recording body, headers and signature validity."""
    app = FastAPI()
    received = Receiver(url="")

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        body = await request.body()
        signature = request.headers.get("x-portside-signature", "")
        received.calls.append(
            {
                "event": json.loads(body),
                "headers": dict(request.headers),
                "valid": verify(WEBHOOK_SECRET, signature, body),
            }
        )
        return {"ok": True}

    async with ApiServer(app) as server:
        received.url = f"{server.url}/hook"
        yield received


@pytest.fixture
async def api_with_webhooks(infra: Infra, receiver: Receiver) -> AsyncIterator[RunningApi]:
    settings = HttpSettings(
        admin_token=TOKEN, webhook_urls=(receiver.url,), webhook_secret=WEBHOOK_SECRET
    )
    app = create_app(infra, build_registry(), settings, publish_outbox=True)
    async with ApiServer(app) as server:
        yield RunningApi(server.url, app)


async def test_q8_completed_and_failed_jobs_are_notified_signed(
    api_with_webhooks: RunningApi, worker_process: WorkerProcess, receiver: Receiver
) -> None:
    async with api_with_webhooks.client() as client:
        done = (await client.post("/jobs/sync-housing-abs-daily", json={})).json()["jobId"]
        bad = {"organizationId": "o-1", "integrationId": "revoked-1", "date": "2024-05-01"}
        failed = (await client.post("/jobs/ingest", json=bad)).json()["jobId"]

    def notified() -> bool:
        seen = {(call["event"]["jobId"], call["event"]["type"]) for call in receiver.calls}
        return {(done, "job.completed"), (failed, "job.failed")} <= seen

    await wait_for(notified, timeout=30, message="both webhook notifications to arrive")
    by_job = {call["event"]["jobId"]: call for call in receiver.calls}
    completed, failure = by_job[done], by_job[failed]
    assert completed["valid"]
    assert failure["valid"]
    assert completed["event"]["queue"] == "sync:housing"
    assert completed["event"]["result"]["rows"] > 0
    assert failure["event"]["failureKind"] == "permanent"
    assert "invalid token" in failure["event"]["error"]
    assert completed["headers"]["x-portside-event"] == "job.completed"
    assert completed["headers"]["x-portside-delivery"].startswith("webhook-deliver")
    deliveries = [call["headers"]["x-portside-delivery"] for call in receiver.calls]
    assert len(deliveries) == len(set(deliveries))  # each notification delivered once
