"""Turn loose arguments into port value types, or raise errors naming the field."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pydantic

from portside.ports import JobOptions, NewJob, RateLimit, Schedule, ValidationError
from portside.ports.model import model_error

__all__ = [
    "check_callable",
    "check_concurrency",
    "check_id",
    "check_seconds",
    "check_sequence",
    "coerce_model",
    "coerce_new_job",
    "coerce_options",
    "coerce_rate_limit",
    "coerce_schedule",
]

M = TypeVar("M", bound=pydantic.BaseModel)


def coerce_model(value: object, model: type[M], field: str) -> M:
    """``value`` as ``model``: an instance passes, a mapping is validated, anything else fails."""
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
    return JobOptions() if options is None else coerce_model(options, JobOptions, field)


def coerce_new_job(item: object, field: str) -> NewJob:
    """One bulk entry (a ``NewJob`` or a dict of its fields)."""
    return coerce_model(item, NewJob, field)


def coerce_rate_limit(value: object) -> RateLimit | None:
    """A RateLimit, or None for no limit."""
    return None if value is None else coerce_model(value, RateLimit, "rate_limit")


def coerce_schedule(value: object) -> Schedule:
    """A Schedule, from an instance or a dict of its fields."""
    return coerce_model(value, Schedule, "schedule")


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


def check_concurrency(value: object) -> int:
    """A worker concurrency: an int from 1 to 10000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValidationError(
            f"concurrency must be an integer from 1 to 10000, got {value!r}",
            fix="pass for example concurrency=5",
            field="concurrency",
        )
    return value


def check_callable(value: object, field: str) -> Callable[..., Any]:
    """``value`` if it can be called."""
    if not callable(value):
        raise ValidationError(
            f"{field} must be callable, got {type(value).__name__}",
            fix="pass an async function taking the job"
            if field == "handler"
            else "pass a function taking the exception and returning 'transient' or 'permanent'",
            field=field,
        )
    return value


def check_id(value: object, field: str) -> str:
    """An id to look up: any non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"{field} must be a non-empty string, got {value!r}",
            fix="pass the id as str (e.g. from the JobRef that enqueue returned)",
            field=field,
        )
    return value
