"""Payload and job builders shared by the job-platform unit tests."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from portside.app import JobContext, JobDefinition, RetryPolicy
from portside.ports import Backoff


class Item(BaseModel):
    """A tiny payload with a business key."""

    model_config = ConfigDict(extra="forbid")

    itemId: str
    value: int = 0


Handler = Callable[[Item, JobContext], Awaitable[Any]]


def item_job(
    handler: Handler, *, name: str = "item", queue: str = "items", **options: Any
) -> JobDefinition[Item]:
    """A job on the ``Item`` payload with fast, deterministic retries."""
    options.setdefault("retry", RetryPolicy(attempts=3, backoff=Backoff.schedule(1, 5, 30)))
    options.setdefault("business_keys", ("itemId",))
    options.setdefault("id_keys", ("itemId",))
    options.setdefault("payload", Item)
    return JobDefinition(name=name, queue=queue, handler=handler, **options)


class Captured(logging.Handler):
    """Collects ``portside`` records directly (``configure_logging`` stops propagation)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
