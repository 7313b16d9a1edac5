"""Reusable contract suites for QueuePort and OutboxPort, and drivers for the fakes.

Run them on any adapter: subclass ``QueueContract``/``OutboxContract`` as ``TestXxx`` in a
test module that provides a ``queue_driver``/``outbox_driver`` fixture (``docs/contracts.md``).
"""

from __future__ import annotations

from portside.testing.contracts.drivers import OutboxDriver, QueueDriver
from portside.testing.contracts.memory import MemoryOutboxDriver, MemoryQueueDriver
from portside.testing.contracts.outbox_contract import OutboxContract
from portside.testing.contracts.queue_contract import QueueContract

__all__ = [
    "MemoryOutboxDriver",
    "MemoryQueueDriver",
    "OutboxContract",
    "OutboxDriver",
    "QueueContract",
    "QueueDriver",
]
