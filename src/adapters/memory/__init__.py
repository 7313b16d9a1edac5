"""In-memory fakes of every port: deterministic, no I/O, driven by a virtual clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portside.adapters.memory.cache import InMemoryCache
from portside.adapters.memory.clock import DEFAULT_START, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.adapters.memory.outbox import InMemoryOutbox, InMemoryOutboxStore, InMemoryTransaction
from portside.adapters.memory.queue import (
    InMemoryEventStream,
    InMemoryJob,
    InMemoryQueue,
    InMemoryWorker,
)
from portside.ports.deprecation import renamed_module_names

__all__ = [
    "DEFAULT_START",
    "InMemoryCache",
    "InMemoryEventStream",
    "InMemoryHistory",
    "InMemoryJob",
    "InMemoryOutbox",
    "InMemoryOutboxStore",
    "InMemoryQueue",
    "InMemoryTransaction",
    "InMemoryWorker",
    "VirtualClock",
]

_RENAMED = {
    "MemoryJob": "InMemoryJob",
    "MemoryTransaction": "InMemoryTransaction",
    "MemoryWorker": "InMemoryWorker",
    "OutboxStore": "InMemoryOutboxStore",
}


if not TYPE_CHECKING:
    # Hidden from type checkers, so a misspelt import still fails type-checking.
    __getattr__ = renamed_module_names(__name__, globals(), _RENAMED)
