"""Fixtures of the HTTP API unit tests: the app on fake infra, an ASGI client, a worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue
from portside.infra import Infra
from tests.unit.http.support import Api, attach_worker, build_api


@pytest.fixture
async def api(fake_infra: Infra) -> AsyncIterator[Api]:
    """The API on the fakes, with an admin token and a worker that ``api.drain()`` runs."""
    queue, outbox = fake_infra.queue, fake_infra.outbox
    assert isinstance(queue, InMemoryQueue)
    assert isinstance(outbox, InMemoryOutbox)
    app, runs, worker = build_api(fake_infra)
    attach_worker(fake_infra, worker, queue.clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://portside.test") as client:
        yield Api(app, client, fake_infra, queue, outbox, queue.clock, runs, worker)
