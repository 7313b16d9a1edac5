"""Fixtures of the job-platform unit tests: fake infra plus in-memory history and cache."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue, VirtualClock
from portside.adapters.memory.cache import InMemoryCache
from portside.adapters.memory.history import InMemoryHistory
from portside.app import Registry, WorkerRuntime
from portside.infra import Infra, use_infra
from tests.unit.app.support import Captured


@pytest.fixture
def clock(app_infra: Infra) -> VirtualClock:
    """The fake queue's virtual clock (history and cache read it too)."""
    queue = app_infra.queue
    assert isinstance(queue, InMemoryQueue)
    return queue.clock


@pytest.fixture
async def app_infra(fake_infra: Infra) -> AsyncIterator[Infra]:
    """``fake_infra`` plus in-memory history and cache on the same virtual clock."""
    queue = fake_infra.queue
    assert isinstance(queue, InMemoryQueue)
    infra = replace(
        fake_infra,
        history=InMemoryHistory(queue.clock.datetime),
        cache=InMemoryCache(queue.clock.now),
    )
    with use_infra(infra):
        yield infra


@pytest.fixture
def fake_queue(app_infra: Infra) -> InMemoryQueue:
    """The fake queue, typed."""
    assert isinstance(app_infra.queue, InMemoryQueue)
    return app_infra.queue


@pytest.fixture
def history(app_infra: Infra) -> InMemoryHistory:
    """The in-memory history, typed."""
    assert isinstance(app_infra.history, InMemoryHistory)
    return app_infra.history


@pytest.fixture
def make_runtime(app_infra: Infra, clock: VirtualClock) -> Callable[..., WorkerRuntime]:
    """Build a runtime on the fake infra with the virtual clock and no background loops."""

    def build(registry: Registry, **options: Any) -> WorkerRuntime:
        options.setdefault("clock", clock.datetime)
        options.setdefault("sample_interval", None)
        options.setdefault("retention_interval", None)
        return WorkerRuntime(registry, app_infra, **options)

    return build


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The ``portside`` log records at INFO and above."""
    yield from _capture(logging.INFO)


@pytest.fixture
def captured_debug() -> Iterator[Captured]:
    """The ``portside`` log records at DEBUG and above (``job.started`` is DEBUG)."""
    yield from _capture(logging.DEBUG)


def _capture(level: int) -> Iterator[Captured]:
    logger = logging.getLogger("portside")
    handler, before = Captured(level), logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
