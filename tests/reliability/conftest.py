"""Fixtures of the reliability suite: scale, figures, private servers and worker processes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portside.servers import LocalPostgres, LocalRedis
from tests.reliability.plugin import REPORT_OPTION, SCALE_OPTION
from tests.reliability.records import create_runs_table
from tests.reliability.scale import CI, FULL, Scale
from tests.reliability.workers import Servers, WorkerSpawner

Figures = dict[str, Any]


@pytest.fixture(scope="session")
def scale(pytestconfig: pytest.Config) -> Scale:
    """The counts this run uses (``--reliability-scale``)."""
    return FULL if pytestconfig.getoption(SCALE_OPTION) == "full" else CI


@pytest.fixture
def figures(
    request: pytest.FixtureRequest, scale: Scale, record_property: Callable[[str, Any], None]
) -> Iterator[Figures]:
    """What a test measured (accepted, delivered, lost, duplicates, faults, inputs).

    Recorded as junit properties, and appended as a JSON line to ``--reliability-report``
    when given, once the test has passed.
    """
    measured: Figures = {}
    began = time.monotonic()
    yield measured
    measured["seconds"] = round(time.monotonic() - began, 1)
    for key, value in measured.items():
        record_property(key, value)
    path = request.config.getoption(REPORT_OPTION)
    report = getattr(request.node, "rep_call", None)
    if path and report is not None and report.passed:
        line = {"test": request.node.nodeid, "scale": scale.name, **measured}
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep the call phase's report on the item, so ``figures`` knows whether it passed."""
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture
async def servers(redis_url: str, redis_prefix: str, postgres_dsn: str) -> Servers:
    """The harness's Redis prefix and database, with the workers' record table."""
    await create_runs_table(postgres_dsn)
    return Servers(redis_url, redis_prefix, postgres_dsn)


@pytest.fixture
def spawn_workers(tmp_path: Path) -> Iterator[Callable[[Servers], WorkerSpawner]]:
    """``spawner = spawn_workers(servers)``; every worker left running is killed afterwards."""
    spawners: list[WorkerSpawner] = []

    def make(servers: Servers) -> WorkerSpawner:
        spawner = WorkerSpawner(servers, tmp_path)
        spawners.append(spawner)
        return spawner

    yield make
    for spawner in spawners:
        spawner.close()


# Tests that kill or restart a server get their own LocalRedis/LocalPostgres, so the harness's
# per-worker servers, shared with every other test under `pytest -n auto`, are never disturbed.


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    """A Redis of this test only, persisting every write before it answers (AOF, fsync
    always), so killing and restarting it loses nothing it acknowledged."""
    server = LocalRedis(appendonly=True, extra_args=("--appendfsync", "always"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def private_postgres() -> AsyncIterator[LocalPostgres]:
    """A Postgres of this test only, committing synchronously (``crash_safe``) so a kill -9
    and restart keeps every acknowledged commit; portside's migrations applied."""
    from portside.adapters.postgres.migrations import migrate

    server = LocalPostgres(crash_safe=True)
    server.start()
    try:
        await migrate(server.dsn)
        yield server
    finally:
        server.stop()
