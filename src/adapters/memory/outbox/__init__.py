"""The outbox fake: InMemoryOutbox and the store and transactions behind it."""

from __future__ import annotations

from portside.adapters.memory.outbox.outbox import InMemoryOutbox
from portside.adapters.memory.outbox.store import InMemoryOutboxStore, InMemoryTransaction

__all__ = ["InMemoryOutbox", "InMemoryOutboxStore", "InMemoryTransaction"]
