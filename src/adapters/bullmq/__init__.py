"""QueuePort on Redis with BullMQ's data layout (wire-compatible with Node BullMQ 5)."""

from __future__ import annotations

from portside.adapters.bullmq.names import QueueName, map_queue
from portside.adapters.bullmq.queue import BullMQQueue
from portside.adapters.bullmq.settings import BullMQSettings

__all__ = ["BullMQQueue", "BullMQSettings", "QueueName", "map_queue"]
