"""Reusable contract suites for every port, and drivers for the fakes.

Run them on any adapter: subclass ``QueueContract``/``OutboxContract``/``HistoryContract``/
``CacheContract`` as ``TestXxx`` in a test module that provides the fixture the suite names
(``queue_driver``, ``outbox_driver``, ``history``, ``cache``; see ``docs/contracts.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portside.ports.deprecation import renamed_module_names
from portside.testing.contracts.cache_contract import CacheContract
from portside.testing.contracts.drivers import OutboxDriver, QueueDriver
from portside.testing.contracts.history_contract import HistoryContract
from portside.testing.contracts.memory import InMemoryOutboxDriver, InMemoryQueueDriver
from portside.testing.contracts.outbox_contract import OutboxContract
from portside.testing.contracts.queue_contract import QueueContract

__all__ = [
    "CacheContract",
    "HistoryContract",
    "InMemoryOutboxDriver",
    "InMemoryQueueDriver",
    "OutboxContract",
    "OutboxDriver",
    "QueueContract",
    "QueueDriver",
]

_RENAMED = {
    "MemoryOutboxDriver": "InMemoryOutboxDriver",
    "MemoryQueueDriver": "InMemoryQueueDriver",
}


if not TYPE_CHECKING:
    # Hidden from type checkers, so a misspelt import still fails type-checking.
    __getattr__ = renamed_module_names(__name__, globals(), _RENAMED)
