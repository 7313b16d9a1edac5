"""The shared queue contract suite against the BullMQ adapter (Q1-Q9, Q11)."""

from __future__ import annotations

import pytest

from portside.adapters.bullmq import BullMQQueue
from portside.ports import QueuePort
from portside.testing.contracts import QueueContract
from portside.testing.contracts.bullmq_driver import BullMQQueueDriver

pytestmark = pytest.mark.integration


class TestBullMQQueueContract(QueueContract):
    """Every behaviour the in-memory fake shows, on real Redis with BullMQ's data layout."""

    @pytest.fixture
    def queue_driver(self, queue_adapter: QueuePort) -> BullMQQueueDriver:
        assert isinstance(queue_adapter, BullMQQueue)
        return BullMQQueueDriver(queue_adapter)
