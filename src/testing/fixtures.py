"""The harness's pytest fixtures: isolated servers, real and fake infra."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import pytest

from portside.infra import Infra, use_infra
from portside.ports import (
    CachePort,
    ConfigurationError,
    HistoryPort,
    JobOutcome,
    OutboxPort,
    QueuePort,
)
from portside.testing.events import EventCapture
from portside.testing.harness import Harness
from portside.testing.helpers import capture_events, drain_outbox_once, drain_queue, paused
from portside.testing.waiting import wait_for

__all__ = [
    "HARNESS_KEY",
    "cache_adapter",
    "drain_outbox_once_fixture",
    "drain_queue_fixture",
    "fake_infra",
    "history_adapter",
    "infra",
    "outbox_adapter",
    "paused_fixture",
    "portside_harness",
    "postgres_dsn",
    "queue_adapter",
    "queue_events",
    "redis_prefix",
    "redis_url",
    "wait_for_fixture",
]

HARNESS_KEY = pytest.StashKey[Harness]()

F = TypeVar("F", bound=Callable[..., Any])


def _async_fixture(function: F) -> F:
    """Mark an async fixture for pytest-asyncio in both its ``auto`` and ``strict`` modes."""
    try:
        import pytest_asyncio
    except ModuleNotFoundError:  # pragma: no cover - pytest-asyncio comes with portside[testing]
        return cast(F, pytest.fixture(function))
    return cast(F, pytest_asyncio.fixture(function))


def _adapter(module: str, name: str) -> Callable[..., Any]:
    """Import an adapter class lazily, so the plugin loads without the optional extras."""
    try:
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"{module}.{name} cannot be imported ({exc})",
            fix="install portside with the extra that provides it (pip install "
            "'portside[bullmq,postgres]'), or use the `fake_infra` fixture",
        ) from exc


@pytest.fixture(scope="session")
def portside_harness(pytestconfig: pytest.Config) -> Harness:
    """This worker's harness: provider, servers and isolation state (started lazily)."""
    return pytestconfig.stash[HARNESS_KEY]


@pytest.fixture
def redis_prefix(portside_harness: Harness) -> Iterator[str]:
    """A key prefix unique to this test (no ``:`` in it); its keys are deleted afterwards.

    Pass it as BullMQ's ``prefix`` and start any other key you write with it.
    """
    keyspace = portside_harness.keyspace()
    prefix = keyspace.new_prefix()
    yield prefix
    keyspace.cleanup(prefix)


@pytest.fixture
def redis_url(portside_harness: Harness, redis_prefix: str) -> str:
    """URL of this worker's Redis; keep every key under ``redis_prefix``."""
    return portside_harness.keyspace().url


@pytest.fixture
def postgres_dsn(portside_harness: Harness) -> Iterator[str]:
    """DSN of a fresh database for this test, with every portside migration applied.

    The database is cloned from a per-worker template and dropped (forcibly) afterwards.
    """
    databases = portside_harness.databases()
    dsn = databases.create_database()
    yield dsn
    databases.drop_database(urlsplit(dsn).path.lstrip("/"))


@_async_fixture
async def queue_adapter(redis_url: str, redis_prefix: str) -> AsyncIterator[QueuePort]:
    """The BullMQ queue adapter on this test's Redis prefix; closed afterwards."""
    bullmq_queue = _adapter("portside.adapters.bullmq", "BullMQQueue")
    adapter: QueuePort = bullmq_queue(redis_url, prefix=redis_prefix)
    try:
        yield adapter
    finally:
        await adapter.close()


@_async_fixture
async def outbox_adapter(postgres_dsn: str) -> AsyncIterator[OutboxPort]:
    """The Postgres outbox adapter on this test's database; closed afterwards."""
    postgres_outbox = _adapter("portside.adapters.postgres", "PostgresOutbox")
    outbox: OutboxPort = postgres_outbox(postgres_dsn)
    try:
        yield outbox
    finally:
        await outbox.close()


@_async_fixture
async def history_adapter(postgres_dsn: str) -> AsyncIterator[HistoryPort]:
    """The Postgres run-history and dead-letter store on this test's database; closed afterwards."""
    postgres_history = _adapter("portside.adapters.postgres.history", "PostgresHistory")
    history: HistoryPort = postgres_history(postgres_dsn)
    try:
        yield history
    finally:
        await history.close()


@_async_fixture
async def cache_adapter(redis_url: str, redis_prefix: str) -> AsyncIterator[CachePort]:
    """The Redis cache with its keys under this test's prefix; closed afterwards."""
    redis_cache = _adapter("portside.adapters.redis", "RedisCache")
    cache: CachePort = redis_cache(redis_url, prefix=f"{redis_prefix}:cache")
    try:
        yield cache
    finally:
        await cache.close()


@_async_fixture
async def infra(
    queue_adapter: QueuePort,
    outbox_adapter: OutboxPort,
    history_adapter: HistoryPort,
    cache_adapter: CachePort,
) -> AsyncIterator[Infra]:
    """Real adapters on this test's isolated Redis prefix and database, installed with
    ``use_infra`` for the test (each adapter fixture closes its adapter afterwards)."""
    real = Infra(
        queue=queue_adapter,
        outbox=outbox_adapter,
        history=history_adapter,
        cache=cache_adapter,
        name="real",
    )
    with use_infra(real):
        yield real


@_async_fixture
async def fake_infra() -> AsyncIterator[Infra]:
    """In-memory fakes installed with ``use_infra`` for the test.

    Queue, outbox, history and cache share one virtual clock (``fake_infra.queue.clock``), so
    ``await fake_infra.queue.advance(30)`` moves time for all of them.
    """
    memory = "portside.adapters.memory"
    clock = _adapter(memory, "VirtualClock")()
    fake = Infra(
        queue=_adapter(memory, "InMemoryQueue")(clock),
        outbox=_adapter(memory, "InMemoryOutbox")(clock),
        history=_adapter(memory, "InMemoryHistory")(now=clock.datetime),
        cache=_adapter(memory, "InMemoryCache")(now=clock.now),
        name="fake",
    )
    try:
        with use_infra(fake):
            yield fake
    finally:
        await fake.close()


@pytest.fixture(name="drain_queue")
def drain_queue_fixture() -> Callable[..., Awaitable[list[JobOutcome]]]:
    """``await drain_queue(queue)``: run the queue's due jobs until idle; the outcomes."""
    return drain_queue


@pytest.fixture(name="drain_outbox_once")
def drain_outbox_once_fixture() -> Callable[..., Awaitable[int]]:
    """``await drain_outbox_once(stream=None)``: publish what is committed; how many."""
    return drain_outbox_once


@pytest.fixture(name="paused")
def paused_fixture() -> Callable[..., AbstractAsyncContextManager[None]]:
    """``async with paused("queue" | outbox | worker):`` hold it, look at the state between."""
    return paused


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Awaitable[None]]:
    """``await wait_for(condition, timeout=..., message=...)``: a condition with a deadline."""
    return wait_for


@_async_fixture
async def queue_events() -> AsyncIterator[Callable[..., EventCapture]]:
    """``events = queue_events("queue")``: capture the queue's events; closed after the test."""
    captures: list[EventCapture] = []

    def capture(queue: str, *, infra: Infra | None = None) -> EventCapture:
        started = capture_events(queue, infra=infra)
        captures.append(started)
        return started

    yield capture
    for started in captures:
        await started.close()
