"""The queue fake: InMemoryQueue and the worker, job and event stream it hands out."""

from __future__ import annotations

from portside.adapters.memory.queue.events import InMemoryEventStream
from portside.adapters.memory.queue.jobs import InMemoryJob
from portside.adapters.memory.queue.queue import InMemoryQueue
from portside.adapters.memory.queue.worker import InMemoryWorker

__all__ = ["InMemoryEventStream", "InMemoryJob", "InMemoryQueue", "InMemoryWorker"]
