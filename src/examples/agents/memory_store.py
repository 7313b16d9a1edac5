"""``InMemoryAgentRunStore``: run rows in a dict, for unit tests and demos on the fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

from portside.examples.agents.models import NewRun, RunRecord
from portside.examples.agents.store import RunWriter
from portside.ports import OutboxPort, Transaction, ValidationError

__all__ = ["InMemoryAgentRunStore"]


def _now() -> datetime:
    return datetime.now(UTC)


class _InMemoryWriter:
    def __init__(self, tx: Transaction, rows: dict[str, RunRecord], now: datetime) -> None:
        self._tx = tx
        self._rows = rows
        self._now = now

    @property
    def tx(self) -> Transaction:
        return self._tx

    async def insert(self, run: NewRun) -> RunRecord:
        if run.id in self._rows:
            raise ValidationError(
                f"run {run.id!r} already exists", fix="use a new run id", field="id"
            )
        record = RunRecord.from_new(run, self._now)
        self._rows[run.id] = record
        return record

    async def lock(self, run_id: str) -> RunRecord | None:
        return self._rows.get(run_id)

    async def save(self, run: RunRecord) -> RunRecord:
        if run.id not in self._rows:
            raise ValidationError(f"run {run.id!r} does not exist", fix="insert it first")
        stored = run.model_copy(update={"updated_at": self._now})
        self._rows[run.id] = stored
        return stored


class InMemoryAgentRunStore:
    """Same semantics as ``SqlAgentRunStore``: rows change only when the unit of work commits.

    Units of work run one at a time (as if every one locked its run row), and their writes
    are applied after the outbox transaction committed; an exception discards them.

    Args:
        clock: ``created_at``/``updated_at`` source (e.g. a virtual clock's ``datetime``).
    """

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._lock = asyncio.Lock()
        self.rows: dict[str, RunRecord] = {}
        """Committed runs by id (inspectable)."""

    def write(self, outbox: OutboxPort) -> AbstractAsyncContextManager[RunWriter]:
        """A unit of work on ``outbox.transaction()`` with staged row writes."""
        return self._write(outbox)

    @asynccontextmanager
    async def _write(self, outbox: OutboxPort) -> AsyncIterator[RunWriter]:
        async with self._lock:
            staged = dict(self.rows)
            async with outbox.transaction() as tx:
                yield _InMemoryWriter(tx, staged, self._clock())
            self.rows = staged

    async def get(self, outbox: OutboxPort, run_id: str) -> RunRecord | None:
        """The committed run, or None."""
        return self.rows.get(run_id)
