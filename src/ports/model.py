"""The base of every port value type: bad arguments raise a portside ValidationError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic

from portside.ports.errors import PortsideError, ValidationError

__all__ = ["PortModel", "model_error"]


@dataclass(frozen=True)
class _Problem:
    loc: str
    text: str
    fix: str | None


def _join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


def _shown(value: object) -> str:
    """``repr(value)``, except for integers too long to print (repr would raise)."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}..."


def _problem(error: pydantic.ValidationError, model: type[pydantic.BaseModel]) -> _Problem:
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    cause = first.get("ctx", {}).get("error")
    inner: _Problem | None = getattr(cause, "_port_problem", None)
    if inner is not None:  # raised by a nested PortModel: keep its precise location
        return _Problem(_join(loc, inner.loc), inner.text, inner.fix)
    if isinstance(cause, PortsideError):
        return _Problem(loc, f"is invalid: {cause.message}", cause.fix)
    if first["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return _Problem(
            loc,
            f"is not a known {model.__name__} field",
            f"remove it; the known fields are: {known}",
        )
    message = first["msg"].removeprefix("Value error, ")
    return _Problem(
        loc,
        f"is invalid: {message} (got {_shown(first.get('input'))})",
        f"see portside.ports.{model.__name__} for the allowed values",
    )


def model_error(
    error: pydantic.ValidationError, model: type[pydantic.BaseModel], prefix: str = ""
) -> ValidationError:
    """The first problem of ``error`` as a portside ValidationError naming the field.

    Args:
        error: What pydantic reported while validating ``model``.
        model: The model that was being built.
        prefix: Where the model sits in the caller's input (``options`` for
            ``enqueue(..., options={...})``); the field becomes ``prefix.<path>``.
    """
    problem = _problem(error, model)
    field = _join(prefix, problem.loc)
    where = field if prefix else _join(model.__name__, problem.loc)
    more = error.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    converted = ValidationError(
        f"{where} {problem.text}{suffix}", fix=problem.fix, field=field or model.__name__
    )
    # A model nested in another is validated through this one's __init__; the outer model's
    # error then finds the inner location here instead of a generic "value error".
    converted._port_problem = problem  # type: ignore[attr-defined]
    return converted


class PortModel(pydantic.BaseModel):
    """A pydantic model whose constructor raises :class:`ValidationError`, not pydantic's.

    ``ValidationError`` is a ``ValueError`` too, so ``except ValueError`` keeps working.
    ``model_validate`` still raises pydantic's error (with this one as its cause).
    """

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise model_error(exc, type(self)) from None
