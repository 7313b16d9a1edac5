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
from portside.ports.errors import ValidationError
from portside.ports.model import model_error
from portside.ports.queue_types import JobOptions, NewJob, RateLimit, Schedule, default_options
from portside.ports.validation import check_job_name, check_text, encode_payload

__all__ = [
    "CheckedJob",
    "EncodedJob",
    "check_callable",
    "check_classifier",
    "check_job",
    "check_lookup_id",
    "check_new_job",
    "check_seconds",
    "check_sequence",
    "coerce_model",
    "coerce_new_job",
    "coerce_options",
    "coerce_rate_limit",
    "coerce_schedule",
    "encode_job",
    "encode_new_job",
]

M = TypeVar("M", bound=BaseModel)

_CALLABLE_FIXES = {
    "classify": "pass a function taking the exception and returning 'transient' or 'permanent'",
}


class CheckedJob(NamedTuple):
    """A job ready to add: its checked name, JSON payload and options with defaults applied."""

    name: str
    data: dict[str, Any]
    options: JobOptions


class EncodedJob(NamedTuple):
    """A checked job for adapters that store JSON text: the payload is already encoded."""

    name: str
    payload: str
    options: JobOptions


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
    """A Schedule, from an instance or a dict of its fields."""
    return coerce_model(value, Schedule, "schedule")


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


def check_lookup_id(value: object, field: str = "job_id") -> str:
    """An id to look a job or scheduler up by: any non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"{field} must be a non-empty string, got {value!r}",
            fix="pass the id as str (e.g. from the JobRef that enqueue returned)",
            field=field,
        )
    return check_text(value, field, "id")
