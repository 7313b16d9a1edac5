"""`JobDefinition`: one typed, validated description per job (A1)."""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Generic, TypeVar

import pydantic
from pydantic import BaseModel

from portside.app.context import JobContext
from portside.app.errors import InvalidPayloadError
from portside.app.job_ids import deterministic_job_id
from portside.app.pool.context import PoolContext
from portside.app.pool.errors import ChildHandlerError
from portside.app.pool.options import ProcessPool, import_path
from portside.ports import (
    Backoff,
    Classifier,
    FailureKind,
    JobOptions,
    RateLimit,
    Retention,
    Schedule,
    ValidationError,
    default_attempts,
    default_classify,
)
from portside.ports.inputs import check_concurrency, check_queue_concurrency
from portside.ports.validation import check_queue_name

__all__ = [
    "DEFAULT_KEEP_COMPLETED",
    "DEFAULT_KEEP_FAILED",
    "Handler",
    "JobDefinition",
    "JobSchedule",
    "PoolHandler",
    "RetryPolicy",
    "payload_error_detail",
]

PayloadT = TypeVar("PayloadT", bound=BaseModel)
Handler = Callable[[PayloadT, JobContext], Awaitable[Any]]
PoolHandler = Callable[[PayloadT, PoolContext], Any]
"""A handler run in a process pool (``executor=ProcessPool(...)``): a plain function."""
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_KINDS = ("transient", "permanent")

MAX_TIMEOUT = 86_400.0
"""The longest timeout a job definition may give one attempt, in seconds (one day)."""

DEFAULT_KEEP_COMPLETED = Retention(count=1000)
"""A job's ``remove_on_complete`` unless it sets one: keep the queue's last 1,000 completed
jobs (Q15). Written to BullMQ as ``removeOnComplete: {"count": 1000}``."""

DEFAULT_KEEP_FAILED = Retention(count=5000)
"""A job's ``remove_on_fail`` unless it sets one: keep the queue's last 5,000 failed jobs
(Q15). Written to BullMQ as ``removeOnFail: {"count": 5000}``."""

Keep = bool | int | Retention


def payload_error_detail(error: pydantic.ValidationError) -> str:
    """``field: problem; field: problem`` from a pydantic error, for one-line messages."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(payload)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and backoff (Q3).

    Attributes:
        attempts: Tries in total; None means ``$PORTSIDE_DEFAULT_ATTEMPTS`` or 3, read at enqueue.
        backoff: Wait before each retry; exponential from 1 s unless given.
    """

    attempts: int | None = None
    backoff: Backoff | None = field(default_factory=lambda: Backoff.exponential(1.0))

    def resolved_attempts(self) -> int:
        """The attempts to enqueue with."""
        return self.attempts if self.attempts is not None else default_attempts()


@dataclass(frozen=True)
class JobSchedule:
    """A repeatable trigger (Q11): a cron ``pattern`` or an interval ``every`` seconds.

    Attributes:
        data: The payload each scheduled run gets; validated against the job's model.
    """

    pattern: str | None = None
    every: float | None = None
    timezone: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def _fail(job: str, attr: str, message: str, fix: str) -> ValidationError:
    return ValidationError(f"job {job!r}: {message}", fix=fix, field=f"{job}.{attr}")


def _annotation_is_date(annotation: Any) -> bool:
    if annotation is date:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return options == [date]
    return False


@dataclass(frozen=True)
class JobDefinition(Generic[PayloadT]):
    """Everything portside needs to enqueue, run, retry, schedule and log one job.

    Attributes:
        name: Stable name (letters, digits, '-', '_'): it is the BullMQ job name, a metric
            label and part of deterministic job ids, so renaming it is a breaking change.
        queue: The queue it runs on (``agents-run:orchestrator`` style namespaces allowed).
        payload: The pydantic model of its data; validated at enqueue and again in the worker.
        handler: ``async def handler(payload, ctx) -> result``; the result must be JSON.
            With ``executor``, a plain ``def handler(payload, ctx: PoolContext) -> result``
            defined at the top level of an importable module (Q14).
        retry: Attempts and backoff.
        timeout: Seconds one attempt may run; a timed-out attempt is a transient failure.
        concurrency: Jobs of this queue running at once per worker process.
        queue_concurrency: Jobs of this queue running at once across every worker process
            and host (BullMQ's global concurrency, honoured by Node workers too); None for
            no queue-wide cap. The worker sets it on the queue when it starts (Q13).
        rate_limit: At most ``max`` jobs per ``per`` seconds on the queue.
        remove_on_complete: Completed jobs of the queue to keep: a ``Retention`` (count
            and/or age in seconds), a count, True to keep none, False to keep all; the last
            1,000 by default (Q15). BullMQ's ``removeOnComplete``.
        remove_on_fail: The same for failed jobs; the last 5,000 by default (Q15).
        schedule: Optional repeatable trigger.
        classification: Exception type -> ``transient``/``permanent``; the most specific class
            in the error's MRO wins; unmatched errors go to ``classifier``.
        classifier: Decides the errors ``classification`` does not match:
            ``default_classify`` unless given; ``http_classify`` for jobs that call HTTP APIs
            (Q17).
        business_keys: Payload fields copied into every log line (e.g. ``organizationId``).
        id_keys: Payload fields that identify one unit of work: deterministic job ids use them
            (all fields when empty).
        date_field: The ``date`` field a backfill fills in, one job per day.
        description: One line for ``--help`` and docs.
        executor: ``ProcessPool(size=...)`` runs the handler in child processes, off the
            worker's event loop, for CPU-bound work (Q14); None runs it on the event loop.
    """

    name: str
    queue: str
    payload: type[PayloadT]
    handler: Handler[PayloadT] | PoolHandler[PayloadT]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 60.0
    concurrency: int = 1
    rate_limit: RateLimit | None = None
    schedule: JobSchedule | None = None
    classification: Mapping[type[BaseException], FailureKind] = field(default_factory=dict)
    business_keys: tuple[str, ...] = ()
    id_keys: tuple[str, ...] = ()
    date_field: str | None = None
    description: str = ""
    queue_concurrency: int | None = None
    remove_on_complete: Keep = DEFAULT_KEEP_COMPLETED
    remove_on_fail: Keep = DEFAULT_KEEP_FAILED
    classifier: Classifier | None = None
    executor: ProcessPool | None = None
    pool_paths: tuple[str, str] | None = field(init=False, default=None, repr=False)
    """``module:qualname`` of the handler and the payload model, for a pool child."""

    def __post_init__(self) -> None:
        self._check_identity()
        self._check_runtime()
        self._check_classification()
        for attr in ("business_keys", "id_keys"):
            for key in getattr(self, attr):
                self.field_name(key, attr)
        self._check_date_field()
        self._check_schedule()

    def _check_identity(self) -> None:
        if not isinstance(self.name, str) or not _JOB_NAME.match(self.name):
            raise ValidationError(
                f"job name {self.name!r} is invalid",
                fix="use 1-100 letters, digits, '-' or '_', starting with a letter or digit "
                "(the name is part of job ids and metric labels)",
                field="name",
            )
        try:
            check_queue_name(self.queue)
        except ValidationError as exc:
            raise _fail(self.name, "queue", exc.message, exc.fix or "") from exc
        if not (inspect.isclass(self.payload) and issubclass(self.payload, BaseModel)):
            raise _fail(
                self.name,
                "payload",
                f"payload is {self.payload!r}, not a pydantic model class",
                "pass the BaseModel subclass itself, e.g. payload=IngestPayload",
            )
        if self.executor is not None:
            self._check_pooled()
        elif not inspect.iscoroutinefunction(self.handler):
            raise _fail(
                self.name,
                "handler",
                f"handler {self.handler!r} is not an async function",
                "define it as `async def handler(payload, ctx): ...`",
            )

    def _check_pooled(self) -> None:
        if not isinstance(self.executor, ProcessPool):
            raise _fail(
                self.name,
                "executor",
                f"executor is {self.executor!r}",
                "pass ProcessPool(size=...), or None to run the handler on the event loop",
            )
        if inspect.iscoroutinefunction(self.handler):
            raise _fail(
                self.name,
                "handler",
                f"handler {self.handler!r} is async, but runs in a process pool",
                "make it a plain `def handler(payload, ctx): ...` (CPU-bound work), or drop "
                "executor to run it on the event loop",
            )
        paths = []
        for attr, target in (("handler", self.handler), ("payload", self.payload)):
            try:
                paths.append(import_path(target, attr))
            except ValidationError as exc:
                raise _fail(self.name, attr, exc.message, exc.fix or "") from None
        object.__setattr__(self, "pool_paths", (paths[0], paths[1]))

    def _check_runtime(self) -> None:
        if not isinstance(self.retry, RetryPolicy):
            raise _fail(
                self.name, "retry", f"retry is {self.retry!r}", "pass RetryPolicy(attempts=...)"
            )
        # The queue's own option model holds the limits of attempts, backoff, timeout and
        # retention.
        with (
            self._named("retry.attempts", "attempts"),
            self._named("retry.backoff", "backoff"),
            self._named("timeout", "timeout"),
            self._named("remove_on_complete", "remove_on_complete"),
            self._named("remove_on_fail", "remove_on_fail"),
        ):
            checked = JobOptions(
                attempts=self.retry.resolved_attempts(),
                backoff=self.retry.backoff,
                timeout=self.timeout,
                remove_on_complete=self.remove_on_complete,
                remove_on_fail=self.remove_on_fail,
            )
        # A dict such as {"count": 100} is kept as the Retention it was read as.
        object.__setattr__(self, "remove_on_complete", checked.remove_on_complete)
        object.__setattr__(self, "remove_on_fail", checked.remove_on_fail)
        if self.timeout > MAX_TIMEOUT:
            raise _fail(
                self.name,
                "timeout",
                f"timeout is {self.timeout!r}",
                f"give at most {MAX_TIMEOUT:g} seconds (one day) per attempt",
            )
        with self._named("concurrency", "concurrency"):
            check_concurrency(self.concurrency)
        with self._named("queue_concurrency", "limit"):
            check_queue_concurrency(self.queue_concurrency)
        if self.rate_limit is not None and not isinstance(self.rate_limit, RateLimit):
            raise _fail(
                self.name,
                "rate_limit",
                f"rate_limit is {self.rate_limit!r}",
                "pass RateLimit(max=60, per=60.0)",
            )

    @contextmanager
    def _named(self, attr: str, field: str) -> Iterator[None]:
        """Re-raise a port ValidationError about ``field`` as one about this job's ``attr``."""
        try:
            yield
        except ValidationError as exc:
            if exc.field != field and not (exc.field or "").startswith(f"{field}."):
                raise
            message = exc.message.removeprefix(f"JobOptions.{field}").removeprefix(field)
            raise _fail(self.name, attr, f"{attr}{message}", exc.fix or "") from None

    def _check_classification(self) -> None:
        if self.classifier is not None and not callable(self.classifier):
            raise _fail(
                self.name,
                "classifier",
                f"classifier is {self.classifier!r}, not a function",
                "pass a function taking the exception and returning 'transient' or "
                "'permanent', e.g. classifier=http_classify",
            )
        for error_type, kind in self.classification.items():
            if not (inspect.isclass(error_type) and issubclass(error_type, BaseException)):
                raise _fail(
                    self.name,
                    "classification",
                    f"classification key {error_type!r} is not an exception class",
                    "map exception classes, e.g. {InvalidTokenError: 'permanent'}",
                )
            if kind not in _KINDS:
                raise _fail(
                    self.name,
                    "classification",
                    f"{error_type.__name__} maps to {kind!r}",
                    "map each exception class to 'transient' or 'permanent'",
                )

    def field_name(self, key: str, attr: str = "business_keys") -> str:
        """The model field behind ``key`` (a field name or its alias)."""
        for name, info in self.payload.model_fields.items():
            if key in (name, info.alias):
                return name
        fields = ", ".join(self.payload.model_fields) or "none"
        raise _fail(
            self.name,
            attr,
            f"{key!r} is not a field of {self.payload.__name__}",
            f"use one of its fields ({fields})",
        )

    def _check_date_field(self) -> None:
        if self.date_field is None:
            return
        name = self.field_name(self.date_field, "date_field")
        annotation = self.payload.model_fields[name].annotation
        if annotation is datetime or not _annotation_is_date(annotation):
            raise _fail(
                self.name,
                "date_field",
                f"{self.payload.__name__}.{name} is {annotation!r}, not a date",
                "point date_field at a field annotated `date` (or `date | None`)",
            )

    def _check_schedule(self) -> None:
        schedule = self.schedule
        if schedule is None:
            return
        # The queue's Schedule model holds the rules of pattern, every and timezone.
        try:
            Schedule(
                scheduler_id=self.name,
                name=self.name,
                pattern=schedule.pattern,
                every=schedule.every,
                timezone=schedule.timezone,
            )
        except ValidationError as exc:
            where = "schedule" if exc.field == "Schedule" else f"schedule.{exc.field}"
            raise _fail(self.name, where, exc.message, exc.fix or "") from None
        if schedule.every is not None and schedule.every < 1:
            raise _fail(
                self.name, "schedule.every", f"every is {schedule.every!r}", "use >= 1 second"
            )
        try:
            self.payload.model_validate(dict(schedule.data))
        except pydantic.ValidationError as exc:
            raise _fail(
                self.name,
                "schedule.data",
                f"scheduled data does not fit {self.payload.__name__}: {payload_error_detail(exc)}",
                "give schedule data valid for the payload model (or make those fields optional)",
            ) from exc

    def validate(self, data: Mapping[str, Any] | BaseModel) -> PayloadT:
        """The payload model for ``data`` (at enqueue).

        Raises:
            ValidationError: field-level detail, e.g. ``date: Input should be a valid date``.
        """
        if isinstance(data, self.payload):
            return data
        source = (
            data.model_dump(mode="json", by_alias=True) if isinstance(data, BaseModel) else data
        )
        try:
            return self.payload.model_validate(source)
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False)[0]["loc"]
            raise ValidationError(
                f"invalid payload for job {self.name!r}: {payload_error_detail(exc)}",
                fix=f"send data matching {self.payload.__name__}",
                field="data." + ".".join(str(part) for part in first) if first else "data",
            ) from exc

    def validate_in_worker(self, data: Mapping[str, Any]) -> PayloadT:
        """Like ``validate``, raising ``InvalidPayloadError`` (permanent) for bad data (Q2)."""
        try:
            return self.payload.model_validate(data)
        except pydantic.ValidationError as exc:
            raise InvalidPayloadError(
                f"invalid payload for job {self.name!r}: {payload_error_detail(exc)}",
                fix=f"enqueue data matching {self.payload.__name__}",
                field="data",
            ) from exc

    def classify(self, error: BaseException) -> FailureKind:
        """Transient or permanent: invalid payloads are always permanent, then
        ``classification``, then ``classifier`` (``default_classify`` unless given)."""
        if isinstance(error, InvalidPayloadError):
            return "permanent"
        if isinstance(error, ChildHandlerError):
            return self._classify_in_child(error)
        for klass in type(error).__mro__:
            kind = self.classification.get(klass)
            if kind is not None:
                return kind
        return (self.classifier or default_classify)(error)

    def _classify_in_child(self, error: ChildHandlerError) -> FailureKind:
        """A pooled handler's error: ``classification`` by class name, else the child's
        default classification (the exception itself stayed in the child)."""
        by_name = {
            f"{klass.__module__}.{klass.__qualname__}": kind
            for klass, kind in self.classification.items()
        }
        for name in error.error_types:
            kind = by_name.get(name)
            if kind is not None:
                return kind
        return error.kind

    def business_values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The business keys found in raw job ``data`` (by key or field name), for log lines."""
        values = {}
        for key in self.business_keys:
            name = self.field_name(key)
            if key in data or name in data:
                values[key] = data.get(key, data.get(name))
        return values

    def job_id_for(self, payload: BaseModel) -> str:
        """The deterministic job id of ``payload``: from ``id_keys``, or every field."""
        dumped = payload.model_dump(mode="json")
        names = [self.field_name(key, "id_keys") for key in self.id_keys] or list(dumped)
        return deterministic_job_id(self.name, {name: dumped.get(name) for name in names})
