"""In-memory fakes of every port: deterministic, no I/O, driven by a virtual clock."""

from __future__ import annotations

import warnings
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

    def __getattr__(name: str) -> object:
        """The renamed classes under their old names, for one release, with a DeprecationWarning."""
        new = _RENAMED.get(name)
        if new is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        warnings.warn(
            f"{name} is deprecated, use {new}; the alias goes in portside 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
