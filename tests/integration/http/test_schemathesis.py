"""Schemathesis against the app's own OpenAPI schema with every check, on real Redis and
Postgres (OPS3): the API enforces what its schema describes and describes what it enforces.

The app is called in process (schemathesis' ASGI transport, one event loop of its own for every
request); the adapters connect lazily in that loop and are closed in it afterwards. Only the
event streams are left out: they never end, and have tests of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings

from portside.app.http import HttpSettings, create_app
from portside.app.settings import Settings
from portside.app.wiring import build_infra
from portside.examples.agents import AgentRuns
from portside.examples.ingestion import build_registry
from tests.integration.http.support import TOKEN

pytestmark = pytest.mark.integration

STREAMS = ("tailOutboxStream", "runEvents")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 15


def _remember_loop(app: FastAPI, loops: list[asyncio.AbstractEventLoop]) -> None:
    """Wrap the app's lifespan to learn which loop serves it (schemathesis' own)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(served: FastAPI) -> AsyncIterator[Any]:
        loops.append(asyncio.get_running_loop())
        async with inner(served) as state:
            yield state

    app.router.lifespan_context = lifespan


@pytest.fixture
def api_schema(redis_url: str, redis_prefix: str, postgres_dsn: str) -> Iterator[Any]:
    """The schema of an app on this test's Redis prefix and database."""
    infra = build_infra(
        Settings(redis_url=redis_url, redis_prefix=redis_prefix, postgres_dsn=postgres_dsn)
    )
    app = create_app(
        infra,
        build_registry(),
        HttpSettings(admin_token=TOKEN, api_token=TOKEN, watch_queue_events=False),
        runs=AgentRuns(),
    )
    loops: list[asyncio.AbstractEventLoop] = []
    _remember_loop(app, loops)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    if loops:
        asyncio.run_coroutine_threadsafe(infra.close(), loops[0]).result(timeout=30)


def _check_operation(operation: Any, failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=AUTH)

    try:
        check()
    except (Exception, BaseExceptionGroup) as error:  # every operation is checked; see them all
        failures.append(f"{operation.label}: {error}")


def test_ops3_api_conforms_to_its_own_schema(api_schema: Any) -> None:
    """OPS3: every operation but the event streams passes all of schemathesis' checks
    (status codes, content types, response schemas, headers, auth, negative and positive
    data), with ``EXAMPLES`` generated cases each."""
    failures: list[str] = []
    checked = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") in STREAMS:
            continue
        checked.append(operation.label)
        _check_operation(operation, failures)
    assert len(checked) >= 20, checked
    assert not failures, "\n\n".join(failures)
