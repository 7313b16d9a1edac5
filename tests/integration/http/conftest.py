"""Fixtures of the HTTP integration tests: the API on a real uvicorn server, a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from portside.app.http import HttpSettings, create_app
from portside.app.http.server import ApiServer
from portside.examples.agents import AgentRuns
from portside.examples.ingestion import build_registry
from portside.infra import Infra
from tests.integration.http.support import TOKEN, RunningApi, WorkerProcess, start_worker


@pytest.fixture
async def api_server(infra: Infra) -> AsyncIterator[RunningApi]:
    """The API on the test's Redis prefix and database, with the outbox publisher running."""
    settings = HttpSettings(admin_token=TOKEN)
    app = create_app(infra, build_registry(), settings, runs=AgentRuns(), publish_outbox=True)
    async with ApiServer(app) as server:
        yield RunningApi(server.url, app)


@pytest.fixture
async def worker_process(
    redis_url: str, redis_prefix: str, postgres_dsn: str
) -> AsyncIterator[WorkerProcess]:
    """A real ``portside worker`` on the same servers, stopped with SIGTERM afterwards."""
    worker = await start_worker(redis_url, redis_prefix, postgres_dsn)
    try:
        yield worker
    finally:
        code = await worker.stop()
        assert code == 0, worker.other[-20:]
