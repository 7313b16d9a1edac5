"""``PostgresHistory``: run history and dead letters in ``job_runs``/``job_failures`` (A3, A4)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict, deque
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from portside.adapters.postgres.coalesce import Coalescer
from portside.adapters.postgres.connections import connection
from portside.adapters.postgres.errors import backend_errors
from portside.adapters.postgres.migrations import pending_migrations
from portside.ports import (
    DEFAULT_FAILURE_RETENTION,
    ConfigurationError,
    DeadLetter,
    FailureKind,
    FinishedRun,
    HistoryPort,
    JobRun,
    NewDeadLetter,
    QueueRunStats,
    RunBucket,
    RunFinish,
    RunMode,
    RunStart,
    RunStatus,
    ValidationError,
)
from portside.ports.history import DEFAULT_RUN_RETENTION, LOST_RUN_ERROR, LOST_RUN_MESSAGE
from portside.ports.validation import spell_out_nul
from portside.sqlfiles import SqlFile

__all__ = ["PostgresHistory"]

PURGE_BATCH = 5000
"""Rows ``purge_runs`` deletes per statement, so no single delete holds a huge lock set."""

_sql = SqlFile("portside.adapters.postgres", "history.sql")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, separators=(",", ":"))
    if "\\u0000" in text:
        # jsonb cannot hold NUL, and a result or a foreign job's data may carry one: keep
        # the record, with each NUL written out visibly as the four characters \x00.
        text = json.dumps(_escape_nul(value), separators=(",", ":"))
    return text


def _escape_nul(value: Any) -> Any:
    if isinstance(value, str):
        return spell_out_nul(value)
    if isinstance(value, dict):
        return {_escape_nul(key): _escape_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_nul(item) for item in value]
    return value


def _run(row: asyncpg.Record) -> JobRun:
    return JobRun(
        id=str(row["id"]),
        job_id=row["job_id"],
        queue=row["queue"],
        name=row["job_name"],
        attempt=row["attempt"],
        run_mode=row["run_mode"],
        status=row["status"],
        failure_kind=row["failure_kind"],
        error_class=row["error_class"],
        error_message=row["error_message"],
        result=None if row["result"] is None else json.loads(row["result"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        seen_at=row["seen_at"],
        keys=json.loads(row["keys"]),
    )


_RUN_COLUMNS = (
    "job_id",
    "queue",
    "job_name",
    "attempt",
    "run_mode",
    "status",
    "started_at",
    "finished_at",
    "failure_kind",
    "error_class",
    "error_message",
    "result",
    "keys",
)
"""The ``job_runs`` columns ``_run_args`` gives values for, in its order."""


def _run_args(run: FinishedRun) -> tuple[Any, ...]:
    status, finished_at, *outcome = _finish_args(run)
    return (
        run.job_id,
        run.queue,
        run.name,
        run.attempt,
        run.run_mode,
        status,
        run.started_at,
        finished_at,
        *outcome,
        _keys(run.keys),
    )


def _keys(keys: Mapping[str, str]) -> str:
    return _json(dict(keys)) or "{}"


def _failure(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(
        id=str(row["id"]),
        queue=row["queue"],
        job_id=row["job_id"],
        name=row["job_name"],
        data=json.loads(row["data"]),
        error_class=row["error_class"],
        error_message=row["error_message"],
        failure_kind=row["failure_kind"],
        attempts_made=row["attempts"],
        failed_at=row["failed_at"],
        retried_at=row["retried_at"],
        retry_job_id=row["retry_job_id"],
    )


def _run_key(run_id: str) -> int | None:
    return int(run_id) if isinstance(run_id, str) and run_id.isdigit() else None


class _Finish(NamedTuple):
    key: int
    run_id: str
    finish: RunFinish


def _start_key(
    job_id: str, queue: str, name: str, attempt: int, mode: str, at: datetime
) -> Hashable:
    return (job_id, queue, name, attempt, mode, at)


def _missing_run(run_id: str) -> ValidationError:
    return ValidationError(
        f"no run with id {run_id!r}", fix="pass the id record_start() returned", field="run_id"
    )


def _finish_args(finish: RunFinish) -> tuple[Any, ...]:
    return (
        finish.status,
        finish.finished_at,
        finish.failure_kind,
        finish.error_class,
        finish.error_message,
        _json(finish.result),
    )


async def _no_reset(connection: asyncpg.Connection[Any]) -> None:
    """Skip the pool's reset query on release: history statements change no session state."""


def _failure_key(failure_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(failure_id)
    except (ValueError, TypeError, AttributeError):
        return None


class PostgresHistory:
    """Run history and dead-letter store on Postgres; the schema comes from ``portside migrate``.

    A small connection pool is opened on first use. Concurrent writes of one kind are
    written as one multi-row statement (see ``Coalescer``): a busy worker makes a few
    statements per event-loop turn instead of one per job, and each caller still gets its own
    row or its own error. Ended attempts (``record_run``) go in up to ``max_connections - 1``
    batches at once.

    Every commit waits for Postgres to flush it to disk, by default. With
    ``synchronous_commit=False`` the run-history writes (not the dead letters) return before
    that flush: a worker makes more attempts per second where each flush takes milliseconds,
    at the price that a crash of the *Postgres server* (not of a worker) can lose the rows
    of the last fraction of a second (``wal_writer_delay``, 200 ms by default, times three).

    Args:
        dsn: libpq-style URL, e.g. ``postgresql://app@db:5432/app``.
        max_connections: Pool size.
        purge_batch: Rows ``purge_runs`` deletes per statement.
        synchronous_commit: Whether run-history commits wait for the disk flush.
    """

    def __init__(
        self,
        dsn: str,
        *,
        max_connections: int = 4,
        purge_batch: int = PURGE_BATCH,
        synchronous_commit: bool = True,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.startswith(("postgresql://", "postgres://")):
            raise ValidationError(
                f"dsn must be a postgresql:// URL, got {dsn!r}",
                fix="pass e.g. 'postgresql://user@localhost:5432/dbname'",
                field="dsn",
            )
        if max_connections < 1:
            raise ValidationError(
                f"max_connections is {max_connections}",
                fix="use 1 or more",
                field="max_connections",
            )
        if purge_batch < 1:
            raise ValidationError(
                f"purge_batch is {purge_batch}", fix="use 1 or more", field="purge_batch"
            )
        self._dsn = dsn
        self._max = max_connections
        self._pool: asyncpg.Pool[Any] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._purge_batch = purge_batch
        self._server_settings = {} if synchronous_commit else {"synchronous_commit": "off"}
        self._starts: Coalescer[RunStart, JobRun] = Coalescer(self._start_many, self._start_one)
        self._finishes: Coalescer[_Finish, JobRun] = Coalescer(
            self._finish_many, self._finish_one, key=lambda item: item.key
        )
        # Rows of ended attempts are inserted, never updated: several batches may be in
        # flight, one per pooled connection but one.
        self._runs: Coalescer[FinishedRun, None] = Coalescer(
            self._runs_many, self._run_one, max_in_flight=max(1, max_connections - 1)
        )

    async def _get_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is not None:
            return self._pool
        if self._closed:
            raise ConfigurationError("this PostgresHistory is closed", fix="create a new one")
        async with self._lock:
            if self._pool is None:
                with backend_errors("opening the job history pool", connecting=True):
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._max,
                        reset=_no_reset,
                        server_settings=self._server_settings,
                    )
            return self._pool

    async def _fetch(self, name: str, *args: Any) -> list[asyncpg.Record]:
        async with connection(await self._get_pool(), f"job history {name}") as conn:
            return list(await conn.fetch(_sql(name), *args))

    async def _execute(self, name: str, *args: Any) -> int:
        """Run the statement ``name``; the rows it affected."""
        async with connection(await self._get_pool(), f"job history {name}") as conn:
            status = await conn.execute(_sql(name), *args)
        return int(status.split()[-1])

    async def _fetchrow(self, name: str, *args: Any) -> asyncpg.Record | None:
        async with connection(await self._get_pool(), f"job history {name}") as conn:
            return await conn.fetchrow(_sql(name), *args)

    async def record_start(self, run: RunStart) -> JobRun:
        """Store an attempt that began (status ``running``)."""
        return await self._starts.submit(run)

    async def _start_one(self, run: RunStart) -> JobRun:
        row = await self._fetchrow(
            "record_start",
            run.job_id,
            run.queue,
            run.name,
            run.attempt,
            run.run_mode,
            run.started_at,
            _keys(run.keys),
        )
        assert row is not None  # INSERT ... RETURNING always returns the row
        return _run(row)

    async def _start_many(self, runs: Sequence[RunStart]) -> list[JobRun | Exception]:
        rows = await self._fetch(
            "record_starts",
            [run.job_id for run in runs],
            [run.queue for run in runs],
            [run.name for run in runs],
            [run.attempt for run in runs],
            [run.run_mode for run in runs],
            [run.started_at for run in runs],
            [_keys(run.keys) for run in runs],
        )
        # Rows are matched by content, not by the order RETURNING happens to use; runs with
        # equal content are interchangeable.
        stored: defaultdict[Hashable, deque[asyncpg.Record]] = defaultdict(deque)
        for row in rows:
            key = _start_key(
                row["job_id"],
                row["queue"],
                row["job_name"],
                row["attempt"],
                row["run_mode"],
                row["started_at"],
            )
            stored[key].append(row)
        results: list[JobRun | Exception] = []
        for run in runs:
            key = _start_key(
                run.job_id, run.queue, run.name, run.attempt, run.run_mode, run.started_at
            )
            matches = stored.get(key)
            if not matches:
                raise RuntimeError(f"record_starts returned no row for {run!r}")
            results.append(_run(matches.popleft()))
        return results

    async def record_finish(self, run_id: str, finish: RunFinish) -> JobRun:
        """Close the attempt ``run_id``."""
        key = _run_key(run_id)
        if key is None:
            raise _missing_run(run_id)
        return await self._finishes.submit(_Finish(key, run_id, finish))

    async def _finish_one(self, item: _Finish) -> JobRun:
        row = await self._fetchrow("record_finish", item.key, *_finish_args(item.finish))
        if row is None:
            raise _missing_run(item.run_id)
        return _run(row)

    async def _finish_many(self, items: Sequence[_Finish]) -> list[JobRun | Exception]:
        columns = zip(*(_finish_args(item.finish) for item in items), strict=True)
        rows = await self._fetch(
            "record_finishes", [item.key for item in items], *(list(column) for column in columns)
        )
        updated = {row["id"]: row for row in rows}
        return [
            _run(updated[item.key]) if item.key in updated else _missing_run(item.run_id)
            for item in items
        ]

    async def record_run(self, run: FinishedRun) -> None:
        """Store an attempt that ended, in one write (batched with concurrent calls)."""
        await self._runs.submit(run)

    async def _run_one(self, run: FinishedRun) -> None:
        async with connection(await self._get_pool(), "job history record_run") as conn:
            await conn.execute(_sql("record_run"), *_run_args(run))

    async def _runs_many(self, runs: Sequence[FinishedRun]) -> list[Exception | None]:
        # COPY: cheaper than a multi-row INSERT on both sides (no per-element array checks
        # in the client, no unnest in the server); a refused batch is replayed row by row.
        async with connection(await self._get_pool(), "job history record_runs") as conn:
            await conn.copy_records_to_table(
                "job_runs", records=[_run_args(run) for run in runs], columns=_RUN_COLUMNS
            )
        return [None] * len(runs)

    async def touch_runs(self, run_ids: Sequence[str], *, at: datetime) -> None:
        """Vouch that the running attempts ``run_ids`` are alive at ``at``."""
        keys = [key for key in map(_run_key, run_ids) if key is not None]
        if not keys:
            return
        async with connection(await self._get_pool(), "job history touch_runs") as conn:
            await conn.execute(_sql("touch_runs"), keys, at)

    async def close_lost_runs(self, stale_after: timedelta, *, now: datetime | None = None) -> int:
        """Close as ``lost`` the running attempts nobody vouched for since
        ``now - stale_after``, in batches of ``purge_batch`` rows."""
        moment = now or datetime.now(UTC)
        closed = 0
        while True:
            count = await self._execute(
                "close_lost_runs",
                moment,
                moment - stale_after,
                LOST_RUN_MESSAGE,
                self._purge_batch,
                LOST_RUN_ERROR,
            )
            closed += count
            if count < self._purge_batch:
                return closed

    async def get_run(self, run_id: str) -> JobRun | None:
        """One attempt by id, or None."""
        key = _run_key(run_id)
        row = None if key is None else await self._fetchrow("get_run", key)
        return None if row is None else _run(row)

    async def list_runs(
        self,
        *,
        job_id: str | None = None,
        queue: str | None = None,
        name: str | None = None,
        status: RunStatus | None = None,
        run_mode: RunMode | None = None,
        keys: Mapping[str, str] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[JobRun]:
        """Attempts matching every given filter, newest first."""
        rows = await self._fetch(
            "list_runs",
            job_id,
            queue,
            name,
            max(limit, 0),
            status,
            run_mode,
            _keys(keys) if keys else None,
            started_after,
            started_before,
            max(offset, 0),
        )
        return [_run(row) for row in rows]

    async def run_buckets(
        self, since: datetime, *, bucket: timedelta = timedelta(minutes=1), queue: str | None = None
    ) -> list[RunBucket]:
        """Finished attempts per queue and per ``bucket`` of time, oldest bucket first."""
        rows = await self._fetch("run_buckets", since, bucket.total_seconds(), queue)
        return [RunBucket(**dict(row)) for row in rows]

    async def queue_stats(self, since: datetime) -> list[QueueRunStats]:
        """Per queue, the attempts that finished at or after ``since``."""
        rows = await self._fetch("queue_stats", since)
        return [QueueRunStats(**dict(row)) for row in rows]

    async def add_failure(self, failure: NewDeadLetter) -> DeadLetter:
        """Store a dead letter (its commit always waits for the disk flush)."""
        args = (
            failure.queue,
            failure.job_id,
            failure.name,
            _json(failure.data),
            failure.error_class,
            failure.error_message,
            failure.failure_kind,
            failure.attempts_made,
            failure.failed_at,
        )
        if not self._server_settings:
            row = await self._fetchrow("add_failure", *args)
        else:
            pool = await self._get_pool()
            async with connection(pool, "job history add_failure") as conn, conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit TO on")
                row = await conn.fetchrow(_sql("add_failure"), *args)
        assert row is not None  # INSERT ... RETURNING always returns the row
        return _failure(row)

    async def list_failures(
        self,
        *,
        queue: str | None = None,
        name: str | None = None,
        failure_kind: FailureKind | None = None,
        failed_after: datetime | None = None,
        failed_before: datetime | None = None,
        include_retried: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> list[DeadLetter]:
        """Dead letters matching every given filter, newest first."""
        rows = await self._fetch(
            "list_failures",
            queue,
            include_retried,
            max(limit, 0),
            name,
            failure_kind,
            failed_after,
            failed_before,
            max(offset, 0),
        )
        return [_failure(row) for row in rows]

    async def get_failure(self, failure_id: str) -> DeadLetter | None:
        """One dead letter by id, or None."""
        key = _failure_key(failure_id)
        row = None if key is None else await self._fetchrow("get_failure", key)
        return None if row is None else _failure(row)

    async def mark_retried(
        self, failure_id: str, *, retry_job_id: str, retried_at: datetime
    ) -> DeadLetter | None:
        """Record that the dead letter was sent back to its queue."""
        key = _failure_key(failure_id)
        row = None
        if key is not None:
            row = await self._fetchrow("mark_retried", key, retried_at, retry_job_id)
        return None if row is None else _failure(row)

    async def purge_failures(
        self,
        older_than: timedelta = DEFAULT_FAILURE_RETENTION,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete dead letters that failed before ``now - older_than``."""
        cutoff = (now or datetime.now(UTC)) - older_than
        return await self._execute("purge_failures", cutoff)

    async def purge_runs(
        self,
        older_than: timedelta = DEFAULT_RUN_RETENTION,
        *,
        now: datetime | None = None,
    ) -> int:
        """Delete finished attempts that ended before ``now - older_than``, in batches of
        ``PURGE_BATCH`` rows (one short transaction each); running attempts stay."""
        cutoff = (now or datetime.now(UTC)) - older_than
        removed = 0
        while True:
            deleted = await self._execute("purge_runs", cutoff, self._purge_batch)
            removed += deleted
            if deleted < self._purge_batch:
                return removed

    async def pending_migrations(self) -> list[str]:
        """portside's migrations the database lacks (empty when current); reaching Postgres
        is part of the answer: an unreachable server raises (readiness, OBS3)."""
        pool = await self._get_pool()
        with backend_errors("job history pending_migrations"):
            return await pending_migrations(pool)

    async def close(self) -> None:
        """Finish the writes under way, then close the pool."""
        await self._starts.idle()
        await self._finishes.idle()
        await self._runs.idle()
        self._closed = True
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


def _check(dsn: str) -> HistoryPort:
    return PostgresHistory(dsn)
