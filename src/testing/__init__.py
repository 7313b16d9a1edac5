"""portside's test harness: pytest plugin, isolation, drain and pause helpers, contract suites."""

from __future__ import annotations

from portside.testing.events import EventCapture
from portside.testing.helpers import capture_events, drain_outbox_once, drain_queue, paused
from portside.testing.waiting import WaitTimeout, wait_for

__all__ = [
    "EventCapture",
    "WaitTimeout",
    "capture_events",
    "drain_outbox_once",
    "drain_queue",
    "paused",
    "wait_for",
]
