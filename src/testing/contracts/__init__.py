"""Reusable contract suites for every port, and drivers for the fakes.

Run them on any adapter: subclass ``QueueContract``/``OutboxContract``/``HistoryContract``/
``CacheContract`` as ``TestXxx`` in a test module that provides the fixture the suite names
(``queue_driver``, ``outbox_driver``, ``history``, ``cache``; see ``docs/contracts.md``).
"""

from __future__ import annotations

from portside.testing.contracts.cache_contract import CacheContract
from portside.testing.contracts.drivers import OutboxDriver, QueueDriver
from portside.testing.contracts.history_contract import HistoryContract
from portside.testing.contracts.memory import MemoryOutboxDriver, MemoryQueueDriver
from portside.testing.contracts.outbox_contract import OutboxContract
from portside.testing.contracts.queue_contract import QueueContract

__all__ = [
    "CacheContract",
    "HistoryContract",
    "MemoryOutboxDriver",
    "MemoryQueueDriver",
    "OutboxContract",
    "OutboxDriver",
    "QueueContract",
    "QueueDriver",
]
