"""In-memory fakes of every port: deterministic, no I/O, driven by a virtual clock."""

from __future__ import annotations

from portside.adapters.memory.cache import InMemoryCache
from portside.adapters.memory.clock import DEFAULT_START, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.adapters.memory.job_record import MemoryJob
from portside.adapters.memory.outbox import InMemoryOutbox
from portside.adapters.memory.outbox_store import MemoryTransaction, OutboxStore
from portside.adapters.memory.queue import InMemoryQueue
from portside.adapters.memory.worker import MemoryWorker

__all__ = [
    "DEFAULT_START",
    "InMemoryCache",
    "InMemoryHistory",
    "InMemoryOutbox",
    "InMemoryQueue",
    "MemoryJob",
    "MemoryTransaction",
    "MemoryWorker",
    "OutboxStore",
    "VirtualClock",
]
