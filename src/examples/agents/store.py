"""Where run rows live: the store interface and its Postgres implementation.

Runs reach Postgres on ports only: ``SqlAgentRunStore`` runs its SQL (``sql/agent_runs.sql``)
on the connection that ``outbox.transaction()`` yields (an asyncpg connection for the Postgres
outbox), so a run row and the events appended in the same unit of work commit together.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from portside.examples.agents.models import NewRun, RunRecord
from portside.ports import ConfigurationError, OutboxPort, Transaction
from portside.sqlfiles import SqlFile

__all__ = ["AgentRunStore", "RunWriter", "SqlAgentRunStore"]


class RunWriter(Protocol):
    """Run-row writes inside one outbox unit of work; append the run's events to ``tx``."""

    @property
    def tx(self) -> Transaction:
        """The outbox transaction: pass it to ``outbox.append``."""
        ...

    async def insert(self, run: NewRun) -> RunRecord:
        """Insert a new run (status ``queued``)."""
        ...

    async def lock(self, run_id: str) -> RunRecord | None:
        """The run, locked until the unit of work ends (None if unknown)."""
        ...

    async def save(self, run: RunRecord) -> RunRecord:
        """Write back the run's status, progress and outcome; returns the stored row."""
        ...


class AgentRunStore(Protocol):
    """Run rows, written in the outbox's units of work."""

    def write(self, outbox: OutboxPort) -> AbstractAsyncContextManager[RunWriter]:
        """Open a unit of work on ``outbox``: rows and events commit or roll back together."""
        ...

    async def get(self, outbox: OutboxPort, run_id: str) -> RunRecord | None:
        """The run as last committed, or None."""
        ...


_sql = SqlFile("portside.examples.agents", "sql", "agent_runs.sql")


def _record(row: Any) -> RunRecord:
    values = dict(row)
    if isinstance(values.get("result"), str):
        values["result"] = json.loads(values["result"])
    return RunRecord.model_validate(values)


def _check_sql(tx: object) -> None:
    if not callable(getattr(tx, "fetchrow", None)):
        raise ConfigurationError(
            f"agent runs need SQL, but the outbox's transaction() yields a {type(tx).__name__}",
            fix="run them on the Postgres outbox (PORTSIDE_POSTGRES_DSN), or give the API and "
            "the registry a InMemoryAgentRunStore in unit tests",
        )


class _SqlWriter:
    def __init__(self, tx: Any) -> None:
        self._tx = tx

    @property
    def tx(self) -> Transaction:
        return self._tx

    async def _one(self, name: str, *args: Any) -> RunRecord | None:
        row = await self._tx.fetchrow(_sql(name), *args)
        return None if row is None else _record(row)

    async def insert(self, run: NewRun) -> RunRecord:
        request = run.request
        stored = await self._one(
            "insert_run",
            run.id,
            request.agent,
            request.input,
            request.steps,
            request.step_delay_ms,
            request.failing_step,
            request.failure,
            run.last_seq,
            run.job_id,
        )
        if stored is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
            raise ConfigurationError(f"inserting run {run.id!r} returned no row")
        return stored

    async def lock(self, run_id: str) -> RunRecord | None:
        return await self._one("lock_run", run_id)

    async def save(self, run: RunRecord) -> RunRecord:
        stored = await self._one(
            "save_run",
            run.id,
            run.status,
            run.started_step,
            run.completed_steps,
            run.last_seq,
            run.attempts,
            None if run.result is None else json.dumps(run.result),
            run.error,
            run.finished_at,
        )
        if stored is None:
            raise ConfigurationError(
                f"run {run.id!r} vanished from agent_runs while it was being saved",
                fix="never delete runs that are still queued or running",
            )
        return stored


class SqlAgentRunStore:
    """``AgentRunStore`` on Postgres through the outbox's unit of work (see the module doc)."""

    def write(self, outbox: OutboxPort) -> AbstractAsyncContextManager[RunWriter]:
        """A unit of work whose SQL runs on the outbox transaction's connection."""
        return self._write(outbox)

    @asynccontextmanager
    async def _write(self, outbox: OutboxPort) -> AsyncIterator[RunWriter]:
        async with outbox.transaction() as tx:
            _check_sql(tx)
            yield _SqlWriter(tx)

    async def get(self, outbox: OutboxPort, run_id: str) -> RunRecord | None:
        """Read the committed run."""
        async with outbox.transaction() as tx:
            _check_sql(tx)
            row = await tx.fetchrow(_sql("get_run"), run_id)
        return None if row is None else _record(row)
