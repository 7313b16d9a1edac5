"""One job attempt in the worker: validate, run with timeout, classify, record, log, measure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn

from pydantic import BaseModel

from portside.app.context import JobContext
from portside.app.definition import JobDefinition
from portside.app.logs import event
from portside.app.metrics import WorkerMetrics
from portside.app.registry import Registry
from portside.app.runmode import split_run_mode
from portside.infra import Infra, use_infra
from portside.ports import (
    BackendUnavailableError,
    FailureKind,
    HistoryPort,
    Job,
    JobRun,
    JobTimeoutError,
    NewDeadLetter,
    PermanentError,
    RunFinish,
    RunMode,
    RunStart,
    ValidationError,
    default_classify,
)
from portside.ports.history import MAX_ERROR_MESSAGE
from portside.ports.validation import spell_out_nul

__all__ = ["KIND_ATTR", "AttemptRunner"]

KIND_ATTR = "_portside_failure_kind"
"""Set on a handler's exception: the classification the queue must apply to it."""

_log = logging.getLogger("portside.worker")


_SCALARS = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return repr(value)


def _message(error: BaseException) -> str:
    # Postgres text cannot hold NUL: a message carrying one would fail the write.
    return spell_out_nul(str(error))[:MAX_ERROR_MESSAGE]


def _tag(error: BaseException, kind: FailureKind) -> None:
    # Exceptions with __slots__ cannot carry the tag and keep the default classification.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(error, KIND_ATTR, kind)


class AttemptRunner:
    """The handler the runtime gives ``queue.consume``: runs one attempt of any registry job.

    Every attempt gets a run-history row; a job that failed for good (permanent error, or
    its last attempt) also gets a dead letter. History writes after the handler ran never
    change the job's outcome: they are logged and counted instead.
    """

    def __init__(
        self,
        registry: Registry,
        infra: Infra,
        history: HistoryPort,
        metrics: WorkerMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._registry = registry
        self._infra = infra
        self._history = history
        self._metrics = metrics
        self._clock = clock

    @staticmethod
    def classify(error: BaseException) -> FailureKind:
        """The queue's classifier: the kind the runner decided, else portside's default."""
        kind = getattr(error, KIND_ATTR, None)
        if kind in ("transient", "permanent"):
            return kind  # type: ignore[no-any-return]
        return default_classify(error)

    async def __call__(self, job: Job) -> Any:
        try:
            stored = job.data
        except ValidationError as error:
            await self._unreadable(job, error)
        data, mode = split_run_mode(stored)
        definition = self._registry.get(job.name) if job.name in self._registry else None
        fields = self._fields(job, mode)
        if definition is not None:
            fields.update(definition.business_values(data))
        run = await self._start(job, mode, fields)
        started = time.perf_counter()
        running = self._metrics.running(job.queue)
        running.inc()
        try:
            result = await self._execute(definition, job, data, mode, fields)
        except asyncio.CancelledError:
            await self._interrupted(run, fields)
            raise
        except Exception as error:
            kind: FailureKind = (
                definition.classify(error) if definition is not None else "permanent"
            )
            seconds = time.perf_counter() - started
            await self._failed(job, run, error, kind, seconds, fields, dict(stored))
            raise
        finally:
            running.dec()
        return await self._completed(job, run, result, time.perf_counter() - started, fields)

    @staticmethod
    def _fields(job: Job, mode: RunMode) -> dict[str, Any]:
        return {
            "job_id": job.id,
            "queue": job.queue,
            "job": job.name,
            "attempt": job.attempt,
            "max_attempts": job.max_attempts,
            "run_mode": mode,
        }

    async def _unreadable(self, job: Job, error: ValidationError) -> NoReturn:
        """A job whose stored data the queue could not decode: recorded, dead-lettered, failed.

        No retry can fix stored bytes, so the attempt fails permanently. The run mode lives in
        the data, so it is unknown: the run counts as ``manual`` (what jobs of other producers
        count as). The dead letter keeps the stored text under ``raw`` for operators.
        """
        fields = self._fields(job, "manual")
        run = await self._start(job, "manual", fields)
        raw = getattr(job, "raw_data", None)
        letter = {"raw": spell_out_nul(raw) if isinstance(raw, str) else None}
        await self._failed(job, run, error, "permanent", 0.0, fields, letter)
        raise error

    async def _start(self, job: Job, mode: RunMode, fields: dict[str, Any]) -> JobRun:
        try:
            run = await self._history.record_start(
                RunStart(
                    job_id=job.id,
                    queue=job.queue,
                    name=job.name,
                    attempt=job.attempt,
                    run_mode=mode,
                    started_at=self._clock(),
                )
            )
        except Exception as error:
            # Nothing ran yet: failing the attempt transiently keeps every run recorded.
            self._metrics.history_errors.labels("record_start").inc()
            event(_log, "history.write_failed", logging.ERROR, operation="record_start", **fields)
            raise BackendUnavailableError(
                f"could not record the start of job {job.id!r} in run history: {error}",
                fix="check the history store (Postgres); the job is retried with backoff",
            ) from error
        event(_log, "job.started", **fields)
        return run

    async def _execute(
        self,
        definition: JobDefinition[Any] | None,
        job: Job,
        data: dict[str, Any],
        mode: RunMode,
        fields: dict[str, Any],
    ) -> Any:
        if definition is None:
            raise PermanentError(
                f"no job named {job.name!r} is registered for queue {job.queue!r}",
                fix="register it in the worker's registry, or stop producing it",
            )
        payload = definition.validate_in_worker(data)
        ctx = JobContext(
            job=job,
            definition=definition,
            run_mode=mode,
            infra=self._infra,
            log_fields=dict(fields),
            now=self._clock,
        )
        scope = asyncio.timeout(definition.timeout)
        try:
            with use_infra(self._infra):
                async with scope:
                    return _jsonable(await definition.handler(payload, ctx))
        except TimeoutError as error:
            if scope.expired():
                raise JobTimeoutError(
                    f"job {job.id!r} ran longer than its {definition.timeout:g} s timeout",
                    fix=f"make {definition.name!r} faster or raise its timeout",
                ) from error
            raise

    async def _completed(
        self, job: Job, run: JobRun, result: Any, seconds: float, fields: dict[str, Any]
    ) -> Any:
        self._metrics.attempt_finished(job.queue, job.name, seconds)
        await self._write(
            "record_finish",
            fields,
            self._history.record_finish(
                run.id, RunFinish(status="completed", finished_at=self._clock(), result=result)
            ),
        )
        event(_log, "job.completed", duration_ms=round(seconds * 1000, 3), **fields)
        return result

    async def _failed(
        self,
        job: Job,
        run: JobRun,
        error: Exception,
        kind: FailureKind,
        seconds: float,
        fields: dict[str, Any],
        data: dict[str, Any],
    ) -> None:
        _tag(error, kind)
        final = kind == "permanent" or job.attempt >= job.max_attempts
        now = self._clock()
        self._metrics.attempt_finished(job.queue, job.name, seconds, kind, final=final)
        error_fields = {
            "error_class": type(error).__name__,
            "error": _message(error),
            "classification": kind,
            "duration_ms": round(seconds * 1000, 3),
        }
        await self._write(
            "record_finish",
            fields,
            self._history.record_finish(
                run.id,
                RunFinish(
                    status="failed" if final else "retrying",
                    finished_at=now,
                    failure_kind=kind,
                    error_class=type(error).__name__,
                    error_message=_message(error),
                ),
            ),
        )
        if not final:
            event(_log, "job.retrying", logging.WARNING, **fields, **error_fields)
            return
        event(_log, "job.failed", logging.ERROR, **fields, **error_fields)
        stored = await self._write(
            "add_failure",
            fields,
            self._history.add_failure(
                NewDeadLetter(
                    queue=job.queue,
                    job_id=job.id,
                    name=job.name,
                    data=data,
                    error_class=type(error).__name__,
                    error_message=_message(error),
                    failure_kind=kind,
                    attempts_made=job.attempt,
                    failed_at=now,
                )
            ),
        )
        if stored:
            event(_log, "job.dead_lettered", logging.ERROR, **fields, **error_fields)

    async def _interrupted(self, run: JobRun, fields: dict[str, Any]) -> None:
        event(_log, "job.interrupted", logging.WARNING, **fields)
        finish = RunFinish(
            status="retrying",
            finished_at=self._clock(),
            failure_kind="transient",
            error_class="CancelledError",
            error_message="the worker stopped before the attempt finished; the queue runs it again",
        )
        await self._write("record_finish", fields, self._history.record_finish(run.id, finish))

    async def _write(
        self, operation: str, fields: dict[str, Any], write: Awaitable[object]
    ) -> bool:
        try:
            await write
        except Exception:
            self._metrics.history_errors.labels(operation).inc()
            _log.exception(
                "history.write_failed", extra={"portside": {"operation": operation, **fields}}
            )
            return False
        return True
