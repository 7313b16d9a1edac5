"""``create_app`` serves what it is given: no run service, no run routes (issue 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from portside.adapters.memory import InMemoryOutbox
from portside.app import Registry
from portside.app.http import HttpSettings, create_app
from portside.examples.agents import AgentRuns, InMemoryAgentRunStore
from portside.examples.ingestion import InMemoryExampleStore, build_registry
from portside.infra import Infra

SETTINGS = HttpSettings(watch_queue_events=False)


@pytest.fixture
async def client(fake_infra: Infra) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(fake_infra, build_registry(store=InMemoryExampleStore()), SETTINGS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portside.test") as http:
        yield http


def _paths(app: FastAPI) -> set[str]:
    return set(app.openapi()["paths"])


async def test_without_a_run_service_there_are_no_run_routes(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/runs")]
    assert "runs" not in {tag["name"] for tag in document["tags"]}
    assert "RunRequest" not in document["components"]["schemas"]
    for method, path in (("POST", "/runs"), ("GET", "/runs/r-1"), ("GET", "/runs/r-1/events")):
        response = await client.request(method, path, json={"input": "x"})
        assert response.status_code == 404, (method, path)
    payload = {"organizationId": "org-1", "integrationId": "int-1", "date": "2024-05-01"}
    assert (await client.post("/jobs/ingest", json=payload)).status_code == 202


async def test_without_a_run_service_health_reports_no_run_queues(
    client: httpx.AsyncClient,
) -> None:
    queues = {q["queue"] for q in (await client.get("/health/queues")).json()["queues"]}
    assert "webhooks:deliver" in queues
    assert "ingestion:ingest" in queues
    assert "agents-run:orchestrator" not in queues


def test_a_run_service_mounts_its_routes_and_the_core_event_stream(fake_infra: Infra) -> None:
    runs = AgentRuns(InMemoryAgentRunStore())
    app = create_app(fake_infra, Registry(), SETTINGS, runs=runs)
    assert {"/runs", "/runs/{run_id}", "/runs/{run_id}/events"} <= _paths(app)
    assert "agent-run" in app.state.portside.known
    assert "agent-run" not in app.state.portside.registry


async def test_the_outbox_publisher_runs_without_a_run_service(fake_infra: Infra) -> None:
    outbox = fake_infra.outbox
    assert isinstance(outbox, InMemoryOutbox)
    app = create_app(fake_infra, Registry(), SETTINGS, publish_outbox=True)
    async with app.router.lifespan_context(app):
        assert outbox.running
    assert not outbox.running
