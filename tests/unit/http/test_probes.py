"""``/livez`` and ``/readyz`` for orchestrators (OBS3): what they check, and that probing every
second costs one backend check per second at most."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from portside.adapters.memory import InMemoryHistory
from portside.app.readiness import Readiness
from portside.infra import Infra
from portside.ports import QueuePort, ServerInfo, WorkerStatus
from tests.unit.http.support import Api, build_api


def _status(running: bool) -> WorkerStatus:
    return WorkerStatus(
        queue="q", running=running, paused=False, concurrency=1, active=0, processed=0, failed=0
    )


class _Schema(InMemoryHistory):
    """A history store that can say which migrations are pending."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__()
        self.pending = pending

    async def pending_migrations(self) -> list[str]:
        return self.pending


class _CountingQueue:
    """Wraps a queue adapter, counting ``server_info`` calls; optionally failing them."""

    def __init__(self, inner: Any, error: Exception | None = None) -> None:
        self._inner = inner
        self.calls = 0
        self.error = error

    async def server_info(self) -> ServerInfo:
        self.calls += 1
        if self.error is not None:
            raise self.error
        info: ServerInfo = await self._inner.server_info()
        return info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_livez_answers_without_touching_a_backend(api: Api) -> None:
    """OBS3: /livez says the process answers."""
    response = await api.client.get("/livez")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_readyz_on_the_fakes_is_ready_and_lists_its_checks(api: Api) -> None:
    """OBS3: /readyz reports each check; an API without workers skips the workers check."""
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["queue_server"]["status"] == "ok"
    assert body["checks"]["postgres"]["status"] == "skipped"
    assert body["checks"]["workers"]["status"] == "skipped"


async def test_readyz_fails_while_a_local_worker_is_not_fetching(fake_infra: Infra) -> None:
    """OBS3: with workers in the process (portside dev), every one must be fetching."""
    statuses = [_status(True), _status(False)]
    app, _, _ = build_api(fake_infra, local_workers=lambda: statuses)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"] == {
        "status": "failed",
        "detail": "1 of 2 consumers fetching",
    }


async def test_pending_migrations_make_the_process_unready(fake_infra: Infra) -> None:
    """OBS3: Postgres reachable is not enough: portside's migrations must be applied."""
    report = await Readiness(fake_infra.queue, _Schema(["0014"])).check()
    assert not report.ready
    postgres = {check.name: check for check in report.checks}["postgres"]
    assert postgres.status == "failed"
    assert "0014" in postgres.detail
    assert "portside migrate" in postgres.detail


async def test_an_unreachable_queue_server_makes_the_process_unready(fake_infra: Infra) -> None:
    """OBS3: a queue server that does not answer fails the queue_server check, by name."""
    queue = _CountingQueue(fake_infra.queue, ConnectionError("connection refused"))
    report = await Readiness(cast(QueuePort, queue), _Schema([])).check()
    checks = {check.name: check for check in report.checks}
    assert not report.ready
    assert checks["queue_server"].status == "failed"
    assert "connection refused" in checks["queue_server"].detail
    assert checks["postgres"].status == "ok"


@pytest.mark.parametrize("probes", [1, 25])
async def test_probing_often_checks_the_backends_once_per_cache_period(
    fake_infra: Infra, probes: int
) -> None:
    """OBS3: cheap enough to call every second: answers are reused for CACHE_SECONDS."""
    now = [100.0]
    queue = _CountingQueue(fake_infra.queue)
    readiness = Readiness(
        cast(QueuePort, queue), fake_infra.history, clock=lambda: now[0], cache_seconds=1.0
    )
    for _ in range(probes):
        assert (await readiness.check()).ready
        now[0] += 0.01
    assert queue.calls == 1
    now[0] += 1.0
    await readiness.check()
    assert queue.calls == 2
