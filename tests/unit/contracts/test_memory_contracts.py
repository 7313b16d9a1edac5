"""The queue and outbox contract suites on the in-memory fakes (Q1-Q9, Q11, O1, O3, O4, O6)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from portside.testing.contracts import (
    InMemoryOutboxDriver,
    InMemoryQueueDriver,
    OutboxContract,
    QueueContract,
)


@pytest.fixture
async def queue_driver() -> AsyncIterator[InMemoryQueueDriver]:
    driver = InMemoryQueueDriver()
    yield driver
    await driver.aclose()


@pytest.fixture
async def outbox_driver() -> AsyncIterator[InMemoryOutboxDriver]:
    driver = InMemoryOutboxDriver()
    yield driver
    await driver.aclose()


class TestInMemoryQueue(QueueContract):
    """Every QueuePort behaviour on InMemoryQueue."""


class TestInMemoryOutbox(OutboxContract):
    """Every OutboxPort behaviour on InMemoryOutbox."""
