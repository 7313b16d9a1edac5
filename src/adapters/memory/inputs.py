"""Boundary checks of the fakes: turn loose input into port types or precise portside errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from portside.ports import (
    Classifier,
    JobOptions,
    NewJob,
    RateLimit,
    Schedule,
    ValidationError,
)
from portside.ports.model import model_error
from portside.ports.validation import check_job_name, json_payload

__all__ = [
    "check_callable",
    "check_classifier",
    "check_job_ref_id",
    "check_positive_int",
    "check_seconds",
    "check_sequence",
    "coerce_model",
    "coerce_new_job",
    "coerce_options",
    "coerce_rate_limit",
    "coerce_schedule",
    "copy_json",
    "json_value",
]

M = TypeVar("M", bound=BaseModel)


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
    if options is None:
        return JobOptions()
    return coerce_model(options, JobOptions, field)


def coerce_new_job(
    item: object, field: str, defaults: JobOptions | None = None
) -> tuple[str, dict[str, Any], JobOptions]:
    """One bulk entry as (name, JSON payload, options), all checked.

    ``defaults`` stands for entries without options, so a bulk reads the environment once.
    """
    job = coerce_model(item, NewJob, field)
    try:
        name = check_job_name(job.name)
    except ValidationError as exc:
        raise ValidationError(exc.message, fix=exc.fix, field=f"{field}.name") from None
    return (
        name,
        json_payload(job.data, f"{field}.data"),
        coerce_options(job.options, f"{field}.options")
        if job.options is not None or defaults is None
        else defaults,
    )


def coerce_rate_limit(value: object) -> RateLimit | None:
    """A RateLimit, or None for no limit."""
    return None if value is None else coerce_model(value, RateLimit, "rate_limit")


def coerce_schedule(value: object) -> Schedule:
    """A Schedule, from an instance or a dict of its fields."""
    return coerce_model(value, Schedule, "schedule")


def check_seconds(value: object, field: str, *, positive: bool = False) -> float:
    """A finite number of seconds, at least 0 (above 0 when ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
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


def check_positive_int(value: object, field: str) -> int:
    """An int of at least 1 (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"{field} must be an integer of at least 1, got {value!r}",
            fix=f"pass {field}=1 or more",
            field=field,
        )
    return value


def check_callable(value: object, field: str) -> Callable[..., Any]:
    """``value`` if it can be called."""
    if not callable(value):
        raise ValidationError(
            f"{field} must be callable, got {type(value).__name__}",
            fix="pass an async function taking the job",
            field=field,
        )
    return value


def check_classifier(value: object) -> Classifier | None:
    """A failure classifier or None."""
    return None if value is None else check_callable(value, "classify")


def check_job_ref_id(job_id: object, field: str = "job_id") -> str:
    """A job id to look up: any non-empty string (generated ids are integers in text)."""
    if not isinstance(job_id, str) or not job_id:
        raise ValidationError(
            f"{field} must be a non-empty string, got {job_id!r}",
            fix="pass the id from the JobRef that enqueue returned",
            field=field,
        )
    return job_id


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists and scalars only)."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def json_value(value: object, field: str) -> Any:
    """``value`` as stored JSON (a pydantic model is dumped), or a ValidationError."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{field} is not JSON: {exc}",
            fix="return or report only str, number, bool, None, list or dict values",
            field=field,
        ) from None


def check_sequence(value: object, field: str) -> Sequence[object]:
    """A list or tuple (not a string or mapping)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValidationError(
            f"{field} must be a list, got {type(value).__name__}",
            fix=f"pass {field} as a list",
            field=field,
        )
    return value
