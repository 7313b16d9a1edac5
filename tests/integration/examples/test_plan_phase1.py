"""E1 ``phase1-tasks`` on real Redis and Postgres: enqueued over HTTP (202 and a job id),
polled, notified to a real webhook receiver on completion and on failure (each delivery a
``webhook-deliver`` job POSTing with httpx), dead letters in Postgres, attempts from the
environment."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from portside.app import Application, Registry
from portside.app.http import HttpSettings, create_app
from portside.app.http.server import ApiServer
from portside.app.http.signing import verify
from portside.app.http.webhook_job import WebhookDelivery
from portside.examples.plans.phase1 import ATTEMPTS_ENV, PHASE1_QUEUE, phase1_definition
from portside.infra import Infra
from portside.testing import wait_for
from tests.integration.examples.plans_support import finished, runtime

pytestmark = pytest.mark.integration

TOKEN = "phase1-admin-token-0123456789abcdef"
SECRET = "phase1-webhook-secret-0123"


@dataclass
class Receiver:
    url: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free port, recording each body and whether its signature holds."""
    app = FastAPI()
    received = Receiver()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        body = await request.body()
        signature = request.headers.get("x-portside-signature", "")
        received.calls.append({"event": json.loads(body), "valid": verify(SECRET, signature, body)})
        return {"ok": True}

    async with ApiServer(app) as server:
        received.url = f"{server.url}/hook"
        yield received


async def test_e1_phase1_tasks_202_poll_webhooks_and_dead_letters(
    platform_infra: Infra,
    db: asyncpg.Connection,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """E1, A6, Q8: 202 with the job id, status by polling, job.completed and job.failed
    webhooks (signed), the failed task in job_failures, attempts from PORTSIDE_PHASE1_ATTEMPTS."""
    monkeypatch.setenv(ATTEMPTS_ENV, "2")
    application = Application(registry=Registry([phase1_definition()]))
    worker_registry = application.worker_registry(WebhookDelivery(secret=lambda: SECRET))
    settings = HttpSettings(admin_token=TOKEN, webhook_urls=(receiver.url,), webhook_secret=SECRET)
    app = create_app(platform_infra, application.public_registry(), settings)
    async with (
        runtime(worker_registry, platform_infra),
        ApiServer(app) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        ok = await client.post(
            "/jobs/phase1-task", json={"taskId": "t-1", "kind": "word-count", "text": "a b c"}
        )
        bad = await client.post(
            "/jobs/phase1-task", json={"taskId": "t-2", "kind": "parse-json", "text": "{oops"}
        )
        assert (ok.status_code, bad.status_code) == (202, 202)
        done, failed = ok.json()["jobId"], bad.json()["jobId"]

        polled: list[dict[str, Any]] = []

        async def completed() -> bool:
            body = (await client.get(f"/jobs/{done}")).json()
            polled.append(body)
            return bool(body["state"] == "completed")

        await wait_for(completed, timeout=30, message="the task to complete, by polling")
        assert polled[-1]["result"] == {"taskId": "t-1", "kind": "word-count", "answer": 3}
        assert polled[-1]["progress"] == 100

        def notified() -> bool:
            seen = {(call["event"]["jobId"], call["event"]["type"]) for call in receiver.calls}
            return {(done, "job.completed"), (failed, "job.failed")} <= seen

        await wait_for(notified, timeout=30, message="both webhooks to arrive")
        info = await finished(platform_infra, PHASE1_QUEUE, failed)
    assert all(call["valid"] for call in receiver.calls)
    failure = next(c["event"] for c in receiver.calls if c["event"]["type"] == "job.failed")
    assert failure["failureKind"] == "permanent"
    assert (info.state, info.attempts_made, info.max_attempts) == ("failed", 1, 2)
    row = await db.fetchrow(
        "SELECT queue, error_class, attempts FROM job_failures WHERE job_id = $1", failed
    )
    assert row is not None
    assert (row["queue"], row["error_class"], row["attempts"]) == (
        PHASE1_QUEUE,
        "JSONDecodeError",
        1,
    )
    deliveries = await db.fetchval(
        "SELECT count(*) FROM job_runs WHERE queue = 'webhooks:deliver' AND status = 'completed'"
    )
    assert deliveries >= 2
