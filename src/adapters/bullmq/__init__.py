"""QueuePort on Redis with BullMQ's data layout (wire-compatible with Node BullMQ 5)."""

from __future__ import annotations

from portside.adapters.bullmq.adapter import BullMQQueue
from portside.adapters.bullmq.names import QueueName, map_queue

__all__ = ["BullMQQueue", "QueueName", "map_queue"]
