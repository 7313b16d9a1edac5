"""One job attempt in the worker: validate, run with timeout, classify, record, log, measure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, cast

from pydantic import BaseModel

from portside.app.context import JobContext
from portside.app.deadlines import Deadlines
from portside.app.definition import Handler, JobDefinition
from portside.app.logs import LogFields, event
from portside.app.metrics import WorkerMetrics
from portside.app.pool.errors import ChildHandlerError
from portside.app.pool.pools import Pools
from portside.app.pool.protocol import Task
from portside.app.registry import Registry
from portside.app.run_recorder import Attempt, RunRecorder
from portside.app.runmode import split_run_mode
from portside.infra import Infra, use_infra
from portside.ports import (
    FailureKind,
    HistoryPort,
    Job,
    JobTimeoutError,
    NewDeadLetter,
    PermanentError,
    RunMode,
    ValidationError,
    default_classify,
)
from portside.ports.history import BUSINESS_KEYS, MAX_ERROR_MESSAGE, business_keys
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


def _error_class(error: BaseException) -> str:
    # A pooled handler's exception stayed in its child: its class name came back.
    if isinstance(error, ChildHandlerError):
        return error.error_class
    return type(error).__name__


def _tag(error: BaseException, kind: FailureKind) -> None:
    # Exceptions with __slots__ cannot carry the tag and keep the default classification.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(error, KIND_ATTR, kind)


class AttemptRunner:
    """The handler the runtime gives ``queue.consume``: runs one attempt of any registry job.

    Every attempt gets a run-history row (``RunRecorder``: written once, when it ends); a job
    that failed for good (permanent error, its last attempt, or stalled too often) also gets
    a dead letter. History writes never change the job's outcome: they are retried while
    the store is unreachable, and otherwise logged and counted.
    """

    def __init__(
        self,
        registry: Registry,
        infra: Infra,
        history: HistoryPort,
        metrics: WorkerMetrics,
        clock: Callable[[], datetime],
        recorder: RunRecorder | None = None,
        pools: Pools | None = None,
    ) -> None:
        self._registry = registry
        self._infra = infra
        self._history = history
        self._metrics = metrics
        self._clock = clock
        self.recorder = recorder or RunRecorder(history, metrics, clock)
        self._deadlines = Deadlines()
        self.pools = pools or Pools()
        """The process pools of jobs with ``executor=ProcessPool(...)`` (Q14)."""

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
        definition = self._registry.find(job.name)
        fields = self._fields(job, mode)
        if definition is not None and definition.business_keys:
            fields.update(definition.business_values(data))
        names = definition.business_keys if definition is not None else ()
        keys = business_keys(data, names or BUSINESS_KEYS)
        attempt = self.recorder.begin(job, mode, fields, keys)
        event(_log, "job.started", logging.DEBUG, base=fields)
        try:
            result = await self._execute(definition, job, data, mode, fields)
        except asyncio.CancelledError:
            await self._interrupted(attempt)
            raise
        except Exception as error:
            kind: FailureKind = (
                definition.classify(error) if definition is not None else "permanent"
            )
            await self._failed(job, attempt, error, kind, dict(stored))
            raise
        return await self._completed(attempt, result)

    @staticmethod
    def _fields(job: Job, mode: RunMode) -> LogFields:
        return LogFields(
            job_id=job.id,
            queue=job.queue,
            job=job.name,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            run_mode=mode,
        )

    async def _unreadable(self, job: Job, error: ValidationError) -> NoReturn:
        """A job whose stored data the queue could not decode: recorded, dead-lettered, failed.

        No retry can fix stored bytes, so the attempt fails permanently. The run mode lives in
        the data, so it is unknown: the run counts as ``manual`` (what jobs of other producers
        count as). The dead letter keeps the stored text under ``raw`` for operators.
        """
        attempt = self.recorder.begin(job, "manual", self._fields(job, "manual"))
        event(_log, "job.started", logging.DEBUG, base=attempt.fields)
        await self._failed(job, attempt, error, "permanent", self._raw_letter(job))
        raise error

    async def abandoned(self, job: Job, error: BaseException) -> None:
        """A job the queue failed for good without an attempt (it stalled too often, Q16):
        a closed run row, a dead letter, the ``job.failed`` line and the metrics, like every
        other final failure. The queue passes this as ``consume(on_abandoned=...)``."""
        try:
            stored = job.data
        except ValidationError:
            mode: RunMode = "manual"
            letter = self._raw_letter(job)
        else:
            _, mode = split_run_mode(stored)
            letter = dict(stored)
        attempt = self.recorder.begin(job, mode, self._fields(job, mode))
        await self._failed(job, attempt, error, "transient", letter, final=True)

    @staticmethod
    def _raw_letter(job: Job) -> dict[str, Any]:
        raw = getattr(job, "raw_data", None)
        return {"raw": spell_out_nul(raw) if isinstance(raw, str) else None}

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
            log_fields=fields,
            now=self._clock,
        )
        scope = self._deadlines.after(definition.timeout)
        try:
            with use_infra(self._infra):
                async with scope:
                    if definition.executor is not None:
                        return await self._in_pool(definition, payload, ctx)
                    handler = cast("Handler[Any]", definition.handler)
                    return _jsonable(await handler(payload, ctx))
        except TimeoutError as error:
            if scope.expired:
                raise JobTimeoutError(
                    f"job {job.id!r} ran longer than its {definition.timeout:g} s timeout",
                    fix=f"make {definition.name!r} faster or raise its timeout",
                ) from error
            raise

    async def _in_pool(
        self, definition: JobDefinition[Any], payload: BaseModel, ctx: JobContext
    ) -> Any:
        """Run a pooled handler in a child of the definition's pool (Q14)."""
        assert definition.executor is not None and definition.pool_paths is not None
        handler, model = definition.pool_paths
        job = ctx.job
        task = Task(
            handler=handler,
            model=model,
            payload=payload.model_dump(mode="json", by_alias=True),
            job_id=job.id,
            name=job.name,
            queue=job.queue,
            attempt=job.attempt,
        )
        pool = self.pools.get(definition.name, definition.executor)
        return await pool.run(task, ctx.progress)

    async def close(self) -> None:
        """End the process pools' children (the worker has stopped)."""
        await self.pools.close()

    async def _completed(self, attempt: Attempt, result: Any) -> Any:
        seconds = time.perf_counter() - attempt.began
        self._metrics.attempt_finished(attempt.queue, attempt.name, seconds)
        await self.recorder.finish(attempt, "completed", result=result)
        event(_log, "job.completed", base=attempt.fields, duration_ms=round(seconds * 1000, 3))
        return result

    async def _failed(
        self,
        job: Job,
        attempt: Attempt,
        error: BaseException,
        kind: FailureKind,
        data: dict[str, Any],
        *,
        final: bool = False,
    ) -> None:
        _tag(error, kind)
        final = final or kind == "permanent" or job.attempt >= job.max_attempts
        seconds = time.perf_counter() - attempt.began
        now = self._clock()
        fields = attempt.fields
        self._metrics.attempt_finished(attempt.queue, attempt.name, seconds, kind, final=final)
        error_class = _error_class(error)
        error_fields = {
            "error_class": error_class,
            "error": _message(error),
            "classification": kind,
            "duration_ms": round(seconds * 1000, 3),
        }
        await self.recorder.finish(
            attempt,
            "failed" if final else "retrying",
            failure_kind=kind,
            error_class=error_class,
            error_message=_message(error),
        )
        if not final:
            event(_log, "job.retrying", logging.WARNING, base=fields, **error_fields)
            return
        event(_log, "job.failed", logging.ERROR, base=fields, **error_fields)
        letter = NewDeadLetter(
            queue=job.queue,
            job_id=job.id,
            name=job.name,
            data=data,
            error_class=error_class,
            error_message=_message(error),
            failure_kind=kind,
            attempts_made=job.attempt,
            failed_at=now,
        )
        stored = await self.recorder.persist(
            "add_failure", fields, lambda: self._history.add_failure(letter)
        )
        if stored:
            event(_log, "job.dead_lettered", logging.ERROR, base=fields, **error_fields)

    async def _interrupted(self, attempt: Attempt) -> None:
        event(_log, "job.interrupted", logging.WARNING, base=attempt.fields)
        # One try: the worker is stopping, and its stop is bounded.
        await self.recorder.finish(
            attempt,
            "retrying",
            failure_kind="transient",
            error_class="CancelledError",
            error_message="the worker stopped before the attempt finished; the queue runs it again",
            retry=False,
        )
