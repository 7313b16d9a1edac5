"""Helpers of the HTTP API unit tests: the app on fake infra and a worker ``drain()`` runs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue, VirtualClock
from portside.app.attempts import AttemptRunner
from portside.app.http import HttpSettings, create_app
from portside.app.metrics import WorkerMetrics
from portside.app.registry import Registry
from portside.examples.agents import InMemoryAgentRunStore
from portside.examples.dev import build_application
from portside.examples.ingestion import InMemoryExampleStore
from portside.infra import Infra
from portside.ports import JobOutcome

TOKEN = "admin-token-for-tests-0123456789"


@dataclass
class Api:
    """The app under test and handles on what it runs on."""

    app: FastAPI
    client: httpx.AsyncClient
    infra: Infra
    queue: InMemoryQueue
    outbox: InMemoryOutbox
    clock: VirtualClock
    runs: InMemoryAgentRunStore
    worker: Registry

    async def drain(self) -> list[JobOutcome]:
        """Run every due job (the worker registry's handlers) until idle."""
        return await self.queue.drain()


def attach_worker(infra: Infra, registry: Registry, clock: VirtualClock) -> None:
    """Consumers for every queue of ``registry``, not started: ``drain()`` runs them inline."""
    history = infra.require_history()
    runner = AttemptRunner(registry, infra, history, WorkerMetrics(), clock.datetime)
    for name in registry.queues():
        settings = registry.queue_settings(name)
        infra.queue.consume(
            name,
            runner,
            concurrency=settings.concurrency,
            timeout=settings.timeout + 5,
            classify=runner.classify,
        )


def build_api(
    infra: Infra, settings: HttpSettings | None = None, **options: object
) -> tuple[FastAPI, InMemoryAgentRunStore, Registry]:
    """The app on ``infra`` with in-memory stores, and the matching worker registry."""
    queue = infra.queue
    assert isinstance(queue, InMemoryQueue)
    runs = InMemoryAgentRunStore(queue.clock.datetime)
    application = build_application(runs=runs, examples=InMemoryExampleStore())
    app = create_app(
        infra,
        application.registry,
        settings or HttpSettings(admin_token=TOKEN, watch_queue_events=False),
        runs=application.runs,
        clock=queue.clock.datetime,
        **options,  # type: ignore[arg-type]
    )
    return app, runs, application.worker_registry()
