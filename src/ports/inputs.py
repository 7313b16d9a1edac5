"""Caller arguments as port values (options, bulk entries, ids, durations), or field-named errors.

Every adapter, fakes included, goes through these functions, so they accept the same input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import pydantic
from pydantic import BaseModel

from portside.ports.classification import Classifier
from portside.ports.cron import check_cron_pattern, resolve_timezone
from portside.ports.errors import ValidationError
from portside.ports.flows import ChildFailure, FlowJob
from portside.ports.model import model_error
from portside.ports.queue_types import (
    MAX_SECONDS,
    MAX_TRACE_CONTEXT,
    JobOptions,
    JobState,
    NewJob,
    RateLimit,
    Retention,
    Schedule,
    default_options,
)
from portside.ports.validation import (
    check_job_name,
    check_queue_name,
    check_stream_name,
    check_text,
    encode_payload,
    json_payload,
)

__all__ = [
    "LISTED_STATES",
    "MAX_CONCURRENCY",
    "MAX_FLOW_JOBS",
    "MAX_LOG_LINE",
    "MAX_PAGE",
    "CheckedJob",
    "EncodedJob",
    "FlowNode",
    "OutboxAppend",
    "check_append",
    "check_cache_key",
    "check_cache_value",
    "check_callable",
    "check_classifier",
    "check_clean_state",
    "check_concurrency",
    "check_count",
    "check_delay",
    "check_flow",
    "check_from_seq",
    "check_job",
    "check_keep",
    "check_log_line",
    "check_lookup_id",
    "check_new_job",
    "check_queue_concurrency",
    "check_schedule",
    "check_seconds",
    "check_sequence",
    "check_states",
    "check_trace_context",
    "check_ttl",
    "coerce_model",
    "coerce_new_job",
    "coerce_options",
    "coerce_rate_limit",
    "coerce_schedule",
    "encode_job",
    "encode_new_job",
]

M = TypeVar("M", bound=BaseModel)

MAX_CONCURRENCY = 10_000
"""The most jobs one worker may run at once (``consume(concurrency=...)``), and the largest
queue-wide cap (``set_queue_concurrency``)."""

MAX_FLOW_JOBS = 10_000
"""The most jobs one flow may hold (``add_flow``); all are added in one atomic write."""

MAX_PAGE = 1000
"""The most jobs one ``list_jobs`` page may hold."""

MAX_LOG_LINE = 100_000
"""The longest log line a job may add, in characters."""

LISTED_STATES: tuple[JobState, ...] = (
    "waiting",
    "paused",
    "delayed",
    "active",
    "completed",
    "failed",
    "waiting-children",
)
"""The states ``list_jobs`` accepts (every ``JobState`` but ``unknown``)."""

_SCHEDULER_CHOOSES = {
    "job_id": "job schedulers name their jobs themselves",
    "dedupe_key": "job schedulers keep one pending job per scheduler themselves",
    "delay": "the pattern or 'every' decides when each job runs",
}

_CALLABLE_FIXES = {
    "classify": "pass a function taking the exception and returning 'transient' or 'permanent'",
}


class CheckedJob(NamedTuple):
    """A job ready to add: its checked name, JSON payload and options with defaults applied."""

    name: str
    data: dict[str, Any]
    options: JobOptions


class OutboxAppend(NamedTuple):
    """The checked arguments of an outbox ``append``."""

    stream: str
    type: str
    payload: dict[str, Any]
    payload_json: str
    key: str | None
    trace_context: str | None = None


class EncodedJob(NamedTuple):
    """A checked job for adapters that store JSON text: the payload is already encoded."""

    name: str
    payload: str
    options: JobOptions


class FlowNode(NamedTuple):
    """One job of a checked flow (``check_flow``); parents come before their children."""

    queue: str
    name: str
    payload: str
    options: JobOptions
    on_failure: ChildFailure
    parent: int | None
    """The index of the parent's node in the list, None for the flow's root."""


def coerce_model(value: object, model: type[M], field: str) -> M:
    """``value`` as ``model``: an instance passes, a mapping is validated, anything else fails.

    Raises:
        ValidationError: naming ``field`` (and the bad key inside it, e.g. ``options.delay``).
    """
    if isinstance(value, model):
        return value
    if isinstance(value, Mapping):
        try:
            return model.model_validate(dict(value))
        except pydantic.ValidationError as exc:
            raise model_error(exc, model, field) from None
    raise ValidationError(
        f"{field} must be a {model.__name__} (or a dict of its fields), got {type(value).__name__}",
        fix=f"build it with portside.ports.{model.__name__}(...)",
        field=field,
    )


def coerce_options(options: object, field: str = "options") -> JobOptions:
    """Job options with defaults applied (``None`` means all defaults)."""
    return default_options() if options is None else coerce_model(options, JobOptions, field)


def coerce_new_job(item: object, field: str) -> NewJob:
    """One bulk entry (a ``NewJob`` or a dict of its fields), its contents not yet checked."""
    return coerce_model(item, NewJob, field)


def coerce_rate_limit(value: object) -> RateLimit | None:
    """A RateLimit, or None for no limit."""
    return None if value is None else coerce_model(value, RateLimit, "rate_limit")


def coerce_schedule(value: object) -> Schedule:
    """A Schedule, from an instance or a dict of its fields (its own rules only)."""
    return coerce_model(value, Schedule, "schedule")


def check_schedule(value: object) -> Schedule:
    """A Schedule that a job scheduler can run, for ``upsert_schedule``.

    Beyond the model's own rules (run again here, for an instance built with
    ``model_construct``): the job name and data follow the rules of an enqueued job, and the
    options that a scheduler decides itself (``job_id``, ``dedupe_key``, ``delay``) are
    refused.

    Raises:
        ValidationError: naming ``schedule.<field>``, e.g. ``schedule.options.job_id``.
    """
    schedule = coerce_schedule(value)
    try:
        check_job_name(schedule.name)
    except ValidationError as exc:
        raise ValidationError(exc.message, fix=exc.fix, field="schedule.name") from None
    json_payload(schedule.data, "schedule.data")
    if schedule.pattern is not None:
        check_cron_pattern(schedule.pattern, "schedule.pattern")
    resolve_timezone(schedule.timezone, "schedule.timezone")
    options = schedule.options
    if options is not None:
        for option, reason in _SCHEDULER_CHOOSES.items():
            if getattr(options, option):
                raise ValidationError(
                    f"schedule.options.{option} is set (scheduler {schedule.scheduler_id!r})",
                    fix=f"drop it: {reason}",
                    field=f"schedule.options.{option}",
                )
    return schedule


def encode_job(
    name: object,
    data: object,
    options: object,
    where: str = "",
    defaults: JobOptions | None = None,
) -> EncodedJob:
    """Check everything about one job before it is added: the one implementation every
    adapter goes through (``check_job`` is this with the payload decoded again).

    Args:
        name: The job name.
        data: The payload: a JSON object (dict or pydantic model).
        options: ``JobOptions``, a dict of its fields, or None.
        where: Where the job sits in the caller's input (``jobs[3]`` in a bulk), so errors
            name ``jobs[3].data.x``; empty for a single enqueue.
        defaults: Options for a job that gives none, so a bulk reads the environment once.

    Raises:
        ValidationError: naming the bad field.
    """
    try:
        job_name = check_job_name(name)
    except ValidationError as exc:
        if not where:
            raise
        raise ValidationError(
            f"{where}: {exc.message}", fix=exc.fix, field=f"{where}.{exc.field}"
        ) from None
    payload = encode_payload(data, f"{where}.data" if where else "data")
    if options is None:
        return EncodedJob(job_name, payload, default_options() if defaults is None else defaults)
    return EncodedJob(
        job_name, payload, coerce_options(options, f"{where}.options" if where else "options")
    )


def encode_new_job(item: object, where: str, defaults: JobOptions | None = None) -> EncodedJob:
    """One bulk entry (a ``NewJob`` or a dict of its fields), fully checked; see ``encode_job``."""
    job = coerce_new_job(item, where)
    return encode_job(job.name, job.data, job.options, where, defaults)


def _decoded(job: EncodedJob) -> CheckedJob:
    return CheckedJob(job.name, json.loads(job.payload), job.options)


def check_job(
    name: object,
    data: object,
    options: object,
    where: str = "",
    defaults: JobOptions | None = None,
) -> CheckedJob:
    """``encode_job``, with the payload as a fresh dict (for adapters that keep objects)."""
    return _decoded(encode_job(name, data, options, where, defaults))


def check_new_job(item: object, where: str, defaults: JobOptions | None = None) -> CheckedJob:
    """One bulk entry (a ``NewJob`` or a dict of its fields), fully checked; see ``encode_job``."""
    return _decoded(encode_new_job(item, where, defaults))


def check_sequence(value: object, field: str) -> Sequence[object]:
    """A list or tuple (not a string or mapping)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValidationError(
            f"{field} must be a list, got {type(value).__name__}",
            fix=f"pass {field} as a list",
            field=field,
        )
    return value


def check_seconds(value: object, field: str, *, positive: bool = False) -> float:
    """A finite number of seconds, at least 0 (above 0 when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"{field} must be a number of seconds, got {type(value).__name__}",
            fix="pass an int or float",
            field=field,
        )
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "above 0" if positive else "0 or more"
        raise ValidationError(
            f"{field} is {value!r}", fix=f"pass a finite number {bound}", field=field
        )
    return float(value)


def check_delay(value: object) -> float:
    """A delayed job's new delay (``change_delay``): seconds above 0, at most ``MAX_SECONDS``."""
    seconds = check_seconds(value, "delay", positive=True)
    if seconds > MAX_SECONDS:
        raise ValidationError(
            f"delay is {value!r}", fix=f"pass at most {MAX_SECONDS:.0f} seconds", field="delay"
        )
    return seconds


def check_callable(value: object, field: str) -> Callable[..., Any]:
    """``value`` if it can be called (a handler, a classifier, a callback)."""
    if not callable(value):
        raise ValidationError(
            f"{field} must be callable, got {type(value).__name__}",
            fix=_CALLABLE_FIXES.get(field, "pass an async function taking the job"),
            field=field,
        )
    return value


def check_classifier(value: object) -> Classifier | None:
    """A failure classifier, or None for the default one."""
    return None if value is None else check_callable(value, "classify")


def check_concurrency(value: object) -> int:
    """A worker's concurrency: an int from 1 to ``MAX_CONCURRENCY``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValidationError(
            f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {value!r}",
            fix="pass for example concurrency=5",
            field="concurrency",
        )
    return value


def check_queue_concurrency(value: object) -> int | None:
    """A queue-wide cap (Q13): an int from 1 to ``MAX_CONCURRENCY``, or None for no cap."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValidationError(
            f"limit must be an integer from 1 to {MAX_CONCURRENCY} or None, got {value!r}",
            fix="pass an integer such as 5 (at most 5 jobs of the queue at once across every "
            "worker), or None for no queue-wide cap",
            field="limit",
        )
    return value


def check_append(
    stream: object, type: object, payload: object, key: object, trace_context: object = None
) -> OutboxAppend:
    """The arguments of an outbox ``append``, checked before anything is written (O1).

    Raises:
        ValidationError: naming ``stream``, ``type``, ``payload...``, ``key`` or
            ``trace_context``.
    """
    name = check_stream_name(stream)
    kind = check_text(type, "type", "event type")
    text = encode_payload(payload, field="payload")
    event_key = None if key is None else check_text(key, "key", "event key")
    return OutboxAppend(
        name, kind, json.loads(text), text, event_key, check_trace_context(trace_context)
    )


def check_trace_context(value: object) -> str | None:
    """Trace propagation metadata (OBS1): None, or text of at most ``MAX_TRACE_CONTEXT``."""
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TRACE_CONTEXT or "\x00" in value:
        shown = f"a {type(value).__name__}" if not isinstance(value, str) else f"{len(value)} chars"
        raise ValidationError(
            f"trace_context is {shown}",
            fix=f"pass None or the propagation headers as JSON text of 1 to "
            f"{MAX_TRACE_CONTEXT} characters without NUL (portside's tracing sets it)",
            field="trace_context",
        )
    return value


def check_from_seq(from_seq: object) -> int:
    """``subscribe``'s first seq to read: an int, at least 1 (O4)."""
    if isinstance(from_seq, bool) or not isinstance(from_seq, int):
        raise ValidationError(
            f"from_seq must be an int, got {type(from_seq).__name__}",
            fix="pass the first seq to read (1 for the whole stream)",
            field="from_seq",
        )
    if from_seq < 1:
        raise ValidationError(
            f"from_seq is {from_seq}",
            fix="seq starts at 1 in every stream; pass 1 or more",
            field="from_seq",
        )
    return from_seq


def check_cache_key(key: object) -> str:
    """A cache key: a non-empty string."""
    if not isinstance(key, str) or not key:
        raise ValidationError(
            f"cache key {key!r} is invalid", fix="pass a non-empty string", field="key"
        )
    return key


def check_cache_value(value: object) -> bytes:
    """A value to cache: bytes (callers encode first)."""
    if not isinstance(value, bytes):
        raise ValidationError(
            f"cache values are bytes, got {type(value).__name__}",
            fix="encode the value first (the read-through helper stores JSON)",
            field="value",
        )
    return value


def check_ttl(ttl: object) -> float:
    """A cache entry's time to live: a finite number of seconds above 0."""
    return check_seconds(ttl, "ttl", positive=True)


def check_keep(value: object, field: str) -> bool | int | Retention:
    """A retention of finished jobs (``remove_on_complete``-style): a bool, a count or a
    ``Retention``, by the rules of ``JobOptions``."""
    if not isinstance(value, bool | int | Retention | Mapping):
        raise ValidationError(
            f"{field} must be True, False, a count of jobs or a Retention, got "
            f"{type(value).__name__}",
            fix=f"pass for example {field}=1000 (keep the last 1,000) or "
            f"{field}=Retention(age=86400)",
            field=field,
        )
    try:
        options = JobOptions.model_validate({"attempts": 1, field: value})
    except pydantic.ValidationError as exc:
        error = model_error(exc, JobOptions)
        raise ValidationError(
            error.message.removeprefix("JobOptions."), fix=error.fix, field=field
        ) from None
    keep: bool | int | Retention = getattr(options, field)
    return keep


def check_lookup_id(value: object, field: str = "job_id") -> str:
    """An id to look a job or scheduler up by: any non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"{field} must be a non-empty string, got {value!r}",
            fix="pass the id as str (e.g. from the JobRef that enqueue returned)",
            field=field,
        )
    return check_text(value, field, "id")


def check_flow(value: object) -> list[FlowNode]:
    """Every job of a flow checked like an enqueued job, before any is added.

    Returns the jobs depth first, each parent before its children. Beyond the job rules:
    ``dedupe_key`` is refused (a deduplicated child would not be linked to its parent, which
    would then wait forever), a job id may appear once per queue, the root has no
    ``on_failure`` (it has no parent), and a flow holds at most ``MAX_FLOW_JOBS`` jobs.

    Raises:
        ValidationError: naming the job's place, e.g. ``flow.children[1].data.url``.
    """
    root = coerce_model(value, FlowJob, "flow")
    if root.on_failure != "wait":
        raise ValidationError(
            f"flow.on_failure is {root.on_failure!r} on the root job, which has no parent",
            fix="set on_failure on child jobs only",
            field="flow.on_failure",
        )
    defaults = default_options()
    nodes: list[FlowNode] = []
    ids: set[tuple[str, str]] = set()
    stack: list[tuple[FlowJob, int | None, str]] = [(root, None, "flow")]
    while stack:
        job, parent, where = stack.pop()
        if len(nodes) == MAX_FLOW_JOBS:
            raise ValidationError(
                f"flow holds more than {MAX_FLOW_JOBS} jobs",
                fix="split it into several flows",
                field="flow",
            )
        nodes.append(_flow_node(job, parent, where, defaults, ids))
        index = len(nodes) - 1
        children = job.children
        for position in range(len(children) - 1, -1, -1):
            stack.append((children[position], index, f"{where}.children[{position}]"))
    return nodes


def _flow_node(
    job: FlowJob,
    parent: int | None,
    where: str,
    defaults: JobOptions,
    ids: set[tuple[str, str]],
) -> FlowNode:
    try:
        queue = check_queue_name(job.queue)
        check_job_name(job.name)
    except ValidationError as exc:
        field = f"{where}.{exc.field}"
        raise ValidationError(f"{field}: {exc.message}", fix=exc.fix, field=field) from None
    checked = encode_job(job.name, job.data, job.options, where, defaults)
    options = checked.options
    if options.dedupe_key is not None:
        raise ValidationError(
            f"{where}.options.dedupe_key is set on a job of a flow",
            fix="drop it: a deduplicated job is not linked to its parent (use a job_id to "
            "make adding the flow idempotent)",
            field=f"{where}.options.dedupe_key",
        )
    if options.job_id is not None:
        if (queue, options.job_id) in ids:
            raise ValidationError(
                f"{where}.options.job_id {options.job_id!r} is used twice in queue {queue!r}",
                fix="give every job of the flow its own id (or none: ids are generated)",
                field=f"{where}.options.job_id",
            )
        ids.add((queue, options.job_id))
    return FlowNode(queue, checked.name, checked.payload, options, job.on_failure, parent)


def check_count(value: object, field: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An int from ``minimum`` to ``maximum`` (a page offset or size, a depth, a limit)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"{field} must be an int, got {type(value).__name__}",
            fix=f"pass a whole number of at least {minimum}",
            field=field,
        )
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
        raise ValidationError(f"{field} is {value}", fix=f"pass {bound}", field=field)
    return value


def check_states(value: object) -> tuple[JobState, ...]:
    """The states of a ``list_jobs`` call: one state or a list of them, duplicates dropped."""
    items = (value,) if isinstance(value, str) else tuple(check_sequence(value, "states"))
    allowed = ", ".join(LISTED_STATES)
    if not items:
        raise ValidationError(
            "states is empty", fix=f"name at least one of {allowed}", field="states"
        )
    states: dict[JobState, None] = {}
    for item in items:
        found = next((state for state in LISTED_STATES if state == item), None)
        if found is None:
            raise ValidationError(
                f"states holds {item!r}, which is not a state jobs can be listed in",
                fix=f"use {allowed}",
                field="states",
            )
        states[found] = None
    return tuple(states)


def check_clean_state(value: object) -> str:
    """The state ``clean`` removes jobs from: ``completed`` or ``failed``."""
    if value not in ("completed", "failed"):
        raise ValidationError(
            f"state is {value!r}; clean removes finished jobs only",
            fix="pass state='completed' or state='failed' (purge() removes waiting jobs)",
            field="state",
        )
    return str(value)


def check_log_line(line: object) -> str:
    """A job's log line: a string of at most ``MAX_LOG_LINE`` characters, valid UTF-8."""
    if not isinstance(line, str):
        raise ValidationError(
            f"a log line must be a str, got {type(line).__name__}",
            fix="format the value as text first",
            field="line",
        )
    if len(line) > MAX_LOG_LINE:
        raise ValidationError(
            f"the log line has {len(line)} characters, over the {MAX_LOG_LINE} limit",
            fix="log a summary and store large content elsewhere",
            field="line",
        )
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                "the log line contains a lone surrogate, which is not valid UTF-8",
                fix="decode the text properly before logging it",
                field="line",
            ) from None
    return line
